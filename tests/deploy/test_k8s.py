"""k8s/: every manifest valid for a current Kubernetes, pods that meet the restricted Pod Security
Standard, probes and resources, the native commands, and a kustomization that holds it all."""

import shutil

import pytest
import yaml

from tests.deploy.conftest import (
    BY_NAME,
    ENV_NAMES,
    K8S_DIR,
    K8S_FILES,
    K8S_VERSION,
    TEST_TOKEN,
    container_command,
    containers,
    environment_names,
    load_all,
    main_container,
    pod_spec,
    run_healthcheck,
    run_tool,
    workloads,
)


def validate(kubernetes_validate: str, path) -> str | None:
    """None when every resource in ``path`` is valid (strict), else the validator's report."""
    argv = [kubernetes_validate, "--strict", "--kubernetes-version", K8S_VERSION, str(path)]
    result = run_tool(argv)
    return None if result.returncode == 0 else result.stdout + result.stderr


def kustomize(kubectl: str, folder) -> list[dict]:
    result = run_tool([kubectl, "kustomize", str(folder)])
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_component_files_are_all_there_is():
    assert sorted(p.name for p in K8S_DIR.glob("*.yaml")) == sorted(
        (*K8S_FILES, "kustomization.yaml")
    )


@pytest.mark.parametrize("name", K8S_FILES)
def test_manifest_is_valid_for_current_kubernetes(kubernetes_validate, name):
    assert validate(kubernetes_validate, K8S_DIR / name) is None


def test_validator_rejects_an_unknown_field(kubernetes_validate, tmp_path):
    service = load_all(K8S_DIR / "mlflow.yaml")[-1]
    service["spec"]["portz"] = service["spec"].pop("ports")
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(service))
    assert "portz" in validate(kubernetes_validate, path)


def test_everything_lives_in_the_pipeline_namespace(k8s_docs):
    namespaced = [d for d in k8s_docs if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"mlpipeline"}


def test_namespace_enforces_the_restricted_standard(k8s_docs):
    namespace = next(d for d in k8s_docs if d["kind"] == "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_workload_and_container_is_covered(k8s_docs):
    names = {c["name"] for w in workloads(k8s_docs) for c in containers(w)}
    assert set(BY_NAME) | {"mongodb"} <= names


def test_every_container_meets_the_restricted_standard(k8s_docs):
    for workload in workloads(k8s_docs):
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            assert context["readOnlyRootFilesystem"] is True, where


def test_writable_paths_are_volumes(k8s_docs):
    for workload in workloads(k8s_docs):
        for container in pod_spec(workload)["containers"]:
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, container["name"]
            if container["name"] in BY_NAME:
                assert "/home/app" in mounts, container["name"]  # MLflow, Streamlit, torch
            if container["name"] in ("trainer", "evaluator", "explainer", "dashboard"):
                assert {"/data", "/artifacts"} <= mounts, container["name"]


def _claim_at(workload: dict, container: dict, path: str) -> str | None:
    """The PersistentVolumeClaim mounted at ``path`` in ``container`` (None: another kind)."""
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == path)
    volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])
    return (volume.get("persistentVolumeClaim") or {}).get("claimName")


def test_run_id_file_and_checkpoints_outlive_their_pods_on_one_shared_claim(k8s_docs):
    """run_id.txt (the dashboard's) and the trainer's checkpoints (--resume auto) were in an
    emptyDir of each pod: lost at a restart, and run_id.txt seen only inside the dashboard."""
    config = next(d for d in k8s_docs if d["kind"] == "ConfigMap")["data"]
    assert config["RUN_ID_FILE"].startswith("/artifacts/")  # CHECKPOINT_DIR: the Dockerfile's
    claims = {
        name: _claim_at(workload, main_container(k8s_docs, name), "/artifacts")
        for name in ("dashboard", "trainer")
        for workload in workloads(k8s_docs)
        if workload["metadata"]["name"] == name
    }
    assert claims["dashboard"] == claims["trainer"] is not None
    claim = next(
        d for d in k8s_docs
        if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claims["trainer"]
    )  # fmt: skip
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # pods on different nodes


# The StorageClasses docs/deployment.md has you create: EFS for the claims that pods on several
# nodes share, EBS for the single-writer stores (SQLite, MongoDB: never on NFS/EFS).
RWX_CLASS, RWO_CLASS = "efs-sc", "gp3"


def claims(docs: list[dict]) -> list[tuple[str, dict]]:
    """(name, spec) of every PersistentVolumeClaim, StatefulSet claim templates included."""
    found = [
        (d["metadata"]["name"], d["spec"]) for d in docs if d["kind"] == "PersistentVolumeClaim"
    ]
    for doc in docs:
        if doc["kind"] == "StatefulSet":
            for template in doc["spec"].get("volumeClaimTemplates", []):
                found.append(
                    (f"{doc['metadata']['name']}/{template['metadata']['name']}", template["spec"])
                )
    return found


def test_every_claim_names_the_class_its_access_mode_needs(k8s_docs):
    """EKS ≥ 1.30 has no default class, and EBS cannot serve ReadWriteMany (Pending pods)."""
    found = claims(k8s_docs)
    assert len(found) == 4  # pipeline-data, pipeline-artifacts, mlflow-store, mongodb/data
    for name, spec in found:
        expected = RWX_CLASS if spec["accessModes"] == ["ReadWriteMany"] else RWO_CLASS
        assert spec["accessModes"] in (["ReadWriteMany"], ["ReadWriteOnce"]), name
        assert spec.get("storageClassName") == expected, name


def test_a_kustomize_patch_renames_the_classes(kubectl, tmp_path):
    """The patches docs/deployment.md shows for clusters whose classes have other names."""
    folder = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, folder)
    kustomization = folder / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + STORAGE_PATCHES)
    built = kustomize(kubectl, folder)
    renamed = {name: spec["storageClassName"] for name, spec in claims(built)}
    assert renamed == {
        "pipeline-data": "my-efs",
        "pipeline-artifacts": "my-efs",
        "mlflow-store": "my-ebs",
        "mongodb/data": "my-ebs",
    }


STORAGE_PATCHES = """
patches:
  - target: {kind: PersistentVolumeClaim, name: pipeline-data|pipeline-artifacts}
    patch: |-
      - {op: replace, path: /spec/storageClassName, value: my-efs}
  - target: {kind: PersistentVolumeClaim, name: mlflow-store}
    patch: |-
      - {op: replace, path: /spec/storageClassName, value: my-ebs}
  - target: {kind: StatefulSet, name: mongodb}
    patch: |-
      - {op: replace, path: /spec/volumeClaimTemplates/0/spec/storageClassName, value: my-ebs}
"""


def test_every_container_has_requests_and_limits(k8s_docs):
    for workload in workloads(k8s_docs):
        for container in containers(workload):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
            assert {"cpu", "memory"} <= set(resources["limits"]), container["name"]


@pytest.mark.parametrize("name", ("mlflow", "evaluator", "explainer", "dashboard", "predictor"))
def test_services_have_probes_on_the_health_endpoint(k8s_docs, name):
    container = main_container(k8s_docs, name)
    health = BY_NAME[name].health_path
    assert container["startupProbe"]["httpGet"]["path"] == health
    assert container["livenessProbe"]["httpGet"]["path"] == health
    if name in ("mlflow", "dashboard"):
        assert container["readinessProbe"]["httpGet"]["path"] == health
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == BY_NAME[name].port


@pytest.mark.parametrize("name", ("evaluator", "explainer", "predictor"))
def test_readiness_probe_calls_ready_with_the_api_token(k8s_docs, name, health_server):
    argv = main_container(k8s_docs, name)["readinessProbe"]["exec"]["command"]
    port = BY_NAME[name].port
    good = run_healthcheck(argv, port, health_server, {"PIPELINE_API_TOKEN": TEST_TOKEN})
    assert good == 0
    wrong = run_healthcheck(argv, port, health_server, {"PIPELINE_API_TOKEN": "wrong"})
    assert wrong != 0


def test_mongodb_has_probes_and_a_volume_claim(k8s_docs):
    statefulset = next(d for d in k8s_docs if d["kind"] == "StatefulSet")
    container = pod_spec(statefulset)["containers"][0]
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"][0] == "mongosh"
    # Liveness without mongosh (a Node process every period under the 1 GiB limit).
    assert container["livenessProbe"]["tcpSocket"]["port"] in ("mongodb", 27017)
    assert {"name": "mongodb", "containerPort": 27017} in container["ports"]
    claim = statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    assert {"name": claim, "mountPath": "/data/db"} in container["volumeMounts"]


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_container_args_are_the_native_command(k8s_docs, name):
    container = main_container(k8s_docs, name)
    assert "command" not in container
    assert container["args"] == container_command(BY_NAME[name])


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_each_service_has_its_image(k8s_docs, name):
    assert main_container(k8s_docs, name)["image"] == f"mlpipeline/{name}:latest"


@pytest.mark.parametrize(
    "name", ("mlflow", "mongodb", "evaluator", "explainer", "dashboard", "predictor")
)
def test_a_service_routes_to_each_server(k8s_docs, name):
    service = next(d for d in k8s_docs if d["kind"] == "Service" and d["metadata"]["name"] == name)
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}
    if name in BY_NAME:
        assert service["spec"]["ports"][0]["port"] == BY_NAME[name].port


@pytest.mark.parametrize("name", ("evaluator", "explainer", "dashboard"))
def test_app_services_get_every_setting(k8s_docs, name):
    assert set(ENV_NAMES) <= environment_names(main_container(k8s_docs, name), k8s_docs)


def test_predictor_gets_mlflow_and_the_api_token(k8s_docs):
    names = environment_names(main_container(k8s_docs, "predictor"), k8s_docs)
    assert {"MLFLOW_TRACKING_URI", "PIPELINE_API_TOKEN"} <= names


def test_the_predictor_s_request_limits_fit_its_memory_limit(k8s_docs):
    """Bodies held at once, plus each concurrent request's decoding (up to 0.5 GB per
    40-megapixel image, README), plus about 0.75 GiB for torch and the model, within the limit:
    else the pod is OOM-killed before the body budget answers 503."""
    container = main_container(k8s_docs, "predictor")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    gib = 2**30
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi")
    needed = int(env["PREDICT_MAX_BODY_BUFFER_BYTES"]) + int(env["PREDICT_CONCURRENCY"]) * 0.5e9
    assert needed + 0.75 * gib <= int(limit[:-2]) * gib


def test_secret_references_resolve(k8s_docs):
    secret = next(d for d in k8s_docs if d["kind"] == "Secret")
    for workload in workloads(k8s_docs):
        for container in containers(workload):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:  # an optional one (PSEUDONYM_KEY) may be left out of the Secret
                    assert ref["name"] == secret["metadata"]["name"]
                    assert ref["key"] in secret["stringData"] or ref.get("optional") is True


def test_secret_template_holds_no_real_secret(k8s_docs):
    secret = next(d for d in k8s_docs if d["kind"] == "Secret")
    assert "data" not in secret
    for key, value in secret["stringData"].items():
        if "PASSWORD" in key or "TOKEN" in key or key.endswith("_URI"):
            assert "CHANGE-ME" in value, key


def test_trainer_is_a_job_that_does_not_restart(k8s_docs):
    job = next(d for d in k8s_docs if d["kind"] == "Job")
    assert job["metadata"]["name"] == "trainer"
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_trainer_threads_follow_its_cpu_limit_not_a_fixed_count(k8s_docs):
    """``common.available_cores`` reads the pod's CPU quota; a fixed OMP_NUM_THREADS would keep
    the old count when the limit is raised."""
    trainer = main_container(k8s_docs, "trainer")
    assert "OMP_NUM_THREADS" not in {e["name"] for e in trainer.get("env", [])}
    assert not trainer["resources"]["limits"]["cpu"].endswith("m")  # whole cores


def test_kustomization_lists_every_component_in_apply_order_but_the_secret_template():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    # Applied, the template's CHANGE-ME values would replace the Secret created beforehand.
    assert kustomization["resources"] == [f for f in K8S_FILES if f != "secrets.yaml"]
    assert kustomization["namespace"] == "mlpipeline"
    assert {i["name"] for i in kustomization["images"]} == {f"mlpipeline/{n}" for n in BY_NAME}


def test_kustomize_build_is_valid(kubectl, kubernetes_validate, k8s_docs, tmp_path):
    built = kustomize(kubectl, K8S_DIR)
    # all but the Secret template, plus the ConfigMap made of mongodb-users.js
    assert len(built) == len(k8s_docs)
    assert "Secret" not in {d["kind"] for d in built}
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all(built))
    assert validate(kubernetes_validate, path) is None


def test_the_trainer_label_selects_the_job_alone(kubectl):
    """The docs and CI apply `-l 'app.kubernetes.io/name!=trainer'` first and the Job later: the
    claims and policies the trainer needs must not carry the label, or they would be left out."""
    built = kustomize(kubectl, K8S_DIR)
    labelled = [
        (d["kind"], d["metadata"]["name"])
        for d in built
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "trainer"
    ]
    assert labelled == [("Job", "trainer")]


def test_every_emptydir_has_a_size_limit(k8s_docs):
    """Scratch space is the node's disk: without a limit, one pod's leftovers (a job killed
    mid-write, months of downloads) fill it and the kubelet evicts every pod on the node."""
    for workload in workloads(k8s_docs):
        for volume in pod_spec(workload).get("volumes", []):
            if "emptyDir" in volume:
                name = (workload["metadata"]["name"], volume["name"])
                assert volume["emptyDir"].get("sizeLimit"), name


def test_images_fail_closed_until_they_are_set(kubectl):
    """Unset, an image must not resolve to a public namespace nobody here controls: a reserved
    `.invalid` host and an upper-case path component (the kubelet: InvalidImageName). The docs'
    and CI's `kustomize edit set image mlpipeline/NAME=...` replace newName and newTag."""
    built = kustomize(kubectl, K8S_DIR)
    images = {c["image"] for w in workloads(built) for c in containers(w)}
    for image in images - {main_container(built, "mongodb")["image"]}:
        host, *path = image.split("/")
        assert host.endswith(".invalid"), image
        assert any(part != part.lower() for part in path), image


def test_mongodb_image_is_a_fixed_release(k8s_docs):
    image = main_container(k8s_docs, "mongodb")["image"]
    name, tag = image.rsplit(":", 1)
    assert name == "mongo" and tag.startswith("7.") and len(tag.split(".")) == 3, image


def test_gpu_patch_puts_the_trainer_on_a_gpu_node(kubectl, kubernetes_validate, tmp_path):
    folder = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, folder)
    kustomization = folder / "kustomization.yaml"
    text = kustomization.read_text()
    assert "# patches:\n#   - path: gpu/trainer-gpu.yaml" in text  # documented, off by default
    kustomization.write_text(text.replace("# patches:\n#   - path:", "patches:\n  - path:"))
    built = kustomize(kubectl, folder)
    job = next(d for d in built if d["kind"] == "Job")
    trainer = main_container(built, "trainer")
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert trainer["resources"]["limits"]["memory"]  # the CPU limits are kept
    assert pod_spec(job)["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod_spec(job)["nodeSelector"]
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump_all(built))
    assert validate(kubernetes_validate, path) is None
