"""k8s/: who may reach which pod: MLflow and MongoDB only from the pipeline's pods that use
them, the token-protected APIs from anywhere on their ports, the dashboard from its
authenticating proxy (k8s/networkpolicy.yaml), checked against every pod's labels and settings."""

import pytest

from tests.deploy.conftest import BY_NAME, environment_names, pod_spec, workloads


def test_mlflow_is_reachable_inside_the_cluster_only(k8s_docs):
    service = next(
        d for d in k8s_docs if d["kind"] == "Service" and d["metadata"]["name"] == "mlflow"
    )
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert not any("nodePort" in port for port in service["spec"]["ports"])
    routed = [d for d in k8s_docs if d["kind"] in ("Ingress", "HTTPRoute")]
    assert "mlflow" not in str(routed)


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects ``labels``."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = labels.get(key)
        matched = {
            "In": key in labels and present in values,
            "NotIn": present not in (values or ()),
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def admits(docs: list[dict], target: dict, source: dict, source_namespace: str, port: int) -> bool:
    """Whether the NetworkPolicies in ``docs`` let a pod labelled ``source`` in
    ``source_namespace`` open ``port`` on a pod labelled ``target`` in mlpipeline (Kubernetes'
    semantics: a pod no Ingress policy selects admits everything; else the union of the rules)."""
    isolating = [
        d
        for d in docs
        if d["kind"] == "NetworkPolicy"
        and "Ingress" in d["spec"].get("policyTypes", ["Ingress"])
        and selects(d["spec"]["podSelector"], target)
    ]
    if not isolating:
        return True
    namespace_labels = {"kubernetes.io/metadata.name": source_namespace}
    for policy in isolating:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and port not in {p["port"] for p in ports}:
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                assert "ipBlock" not in peer, policy["metadata"]["name"]
                if "namespaceSelector" in peer:
                    in_namespace = selects(peer["namespaceSelector"], namespace_labels)
                else:
                    in_namespace = source_namespace == "mlpipeline"
                if in_namespace and selects(peer.get("podSelector", {}), source):
                    return True
    return False


def pod_labels(docs: list[dict]) -> dict[str, dict]:
    """The pod labels of every workload, by workload name."""
    return {
        w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in workloads(docs)
    }


# Pods that are none of the pipeline's: one in its namespace, one elsewhere (a client, an
# ingress controller).
STRANGERS = (({"app.kubernetes.io/name": "stranger"}, "mlpipeline"), ({"app": "x"}, "other"))


def admitted(docs: list[dict], target: str, port: int) -> set[str]:
    """Names of the pipeline's pods, and of the STRANGERS ("stranger", "elsewhere"), that may
    connect to ``port`` of the ``target`` workload's pods."""
    labels = pod_labels(docs)
    found = {
        name
        for name, source in labels.items()
        if admits(docs, labels[target], source, "mlpipeline", port)
    }
    for (source, namespace), name in zip(STRANGERS, ("stranger", "elsewhere"), strict=True):
        if admits(docs, labels[target], source, namespace, port):
            found.add(name)
    return found


def clients_of(docs: list[dict], variable: str) -> set[str]:
    """Workloads whose main container gets ``variable`` (their own or through envFrom)."""
    return {
        w["metadata"]["name"]
        for w in workloads(docs)
        if any(variable in environment_names(c, docs) for c in pod_spec(w)["containers"])
    }


def test_a_default_deny_ingress_policy_isolates_every_pod(k8s_docs):
    deny = [
        d
        for d in k8s_docs
        if d["kind"] == "NetworkPolicy"
        and d["spec"]["podSelector"] == {}
        and d["spec"]["policyTypes"] == ["Ingress"]
        and not d["spec"].get("ingress")
    ]
    assert deny
    assert not admitted(k8s_docs, "trainer", 8080)  # nothing listens there: nobody may connect


def test_mlflow_admits_exactly_the_pods_that_use_it(k8s_docs):
    """MLflow has no authentication: a client can register a pickled model and move the alias."""
    expected = {"trainer", "evaluator", "explainer", "dashboard", "predictor"}
    assert clients_of(k8s_docs, "MLFLOW_TRACKING_URI") == expected
    assert admitted(k8s_docs, "mlflow", 5000) == expected
    assert admitted(k8s_docs, "mlflow", 5001) == set()


def test_mongodb_admits_exactly_the_pods_that_use_it(k8s_docs):
    expected = {"evaluator", "explainer", "dashboard"}
    assert clients_of(k8s_docs, "MONGO_URI") == expected
    assert admitted(k8s_docs, "mongodb", 27017) == expected


@pytest.mark.parametrize("name", ("evaluator", "explainer", "predictor"))
def test_token_protected_apis_admit_anyone_on_their_port_only(k8s_docs, name):
    everyone = set(pod_labels(k8s_docs)) | {"stranger", "elsewhere"}
    assert admitted(k8s_docs, name, BY_NAME[name].port) == everyone
    assert admitted(k8s_docs, name, BY_NAME[name].port + 100) == set()


def test_dashboard_admits_only_its_authenticating_proxy(k8s_docs):
    """No login, the API token and the alias: open to every pod it would bypass MLflow's rule."""
    port = BY_NAME["dashboard"].port
    assert admitted(k8s_docs, "dashboard", port) == set()
    proxy = {"app.kubernetes.io/name": "dashboard-proxy"}
    assert admits(k8s_docs, pod_labels(k8s_docs)["dashboard"], proxy, "mlpipeline", port)
    assert not admits(k8s_docs, pod_labels(k8s_docs)["dashboard"], proxy, "other", port)
