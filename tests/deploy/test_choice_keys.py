"""The choices' Ed25519 key pair in docker-compose.yml and k8s/ (docs/deployment.md, "The
choices' key pair"): the private key reaches the dashboard alone, the public keys the predictor;
both optional, so that a deployment without them signs and checks with the HMAC key as before;
and docker-compose.choice-keys.yml / k8s/choice-keys/predictor.yaml take the secrets that sign
choices (PIPELINE_SIGNING_KEY, PIPELINE_PREVIOUS_TOKENS) away from the predictor."""

import shutil

import pytest
import yaml

from tests.deploy.conftest import (
    K8S_DIR,
    ROOT,
    containers,
    main_container,
    run_tool,
    workloads,
)

PRIVATE, PUBLIC = "PIPELINE_CHOICE_PRIVATE_KEY", "PIPELINE_CHOICE_PUBLIC_KEY"
FORMER = "PIPELINE_CHOICE_PREVIOUS_PUBLIC_KEYS"
SIGNING = ("PIPELINE_SIGNING_KEY", "PIPELINE_PREVIOUS_TOKENS")
OVERRIDE = ROOT / "docker-compose.choice-keys.yml"
PATCH = "choice-keys/predictor.yaml"


def _secret_refs(container: dict) -> dict[str, dict]:
    """{environment variable: its secretKeyRef} of a container."""
    return {
        env["name"]: env["valueFrom"]["secretKeyRef"]
        for env in container.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }


def test_compose_gives_the_private_key_to_the_dashboard_alone(compose):
    given = {name for name, s in compose["services"].items() if PRIVATE in s.get("environment", {})}
    assert given == {"dashboard"}
    assert compose["services"]["dashboard"]["environment"][PRIVATE] == f"${{{PRIVATE}:-}}"


def test_compose_gives_the_predictor_the_public_keys_if_set(compose):
    env = compose["services"]["predictor"]["environment"]
    assert (env[PUBLIC], env[FORMER]) == (f"${{{PUBLIC}:-}}", f"${{{FORMER}:-}}")
    assert env["PIPELINE_SIGNING_KEY"] == "${PIPELINE_SIGNING_KEY:-}"  # as before, without them


def test_the_compose_override_takes_the_signing_secrets_from_the_predictor(compose):
    override = yaml.safe_load(OVERRIDE.read_text())
    assert set(override["services"]) == {"predictor"}
    env = {**compose["services"]["predictor"]["environment"],  # Compose merges it by name
           **override["services"]["predictor"]["environment"]}  # fmt: skip
    assert [env[name] for name in SIGNING] == ["", ""]  # empty: unset (common.Settings)
    assert env[PUBLIC].startswith(f"${{{PUBLIC}:?")  # required: no predictor without it


def test_the_compose_override_is_valid_against_the_specification(check_jsonschema):
    argv = [check_jsonschema, "--builtin-schema", "vendor.compose-spec", str(OVERRIDE)]
    result = run_tool(argv)
    assert result.returncode == 0, result.stdout + result.stderr


def test_k8s_gives_the_private_key_to_the_dashboard_alone(k8s_docs):
    given = {
        container["name"]
        for workload in workloads(k8s_docs)
        for container in containers(workload)
        if PRIVATE in _secret_refs(container)
    }
    assert given == {"dashboard"}
    assert _secret_refs(main_container(k8s_docs, "dashboard"))[PRIVATE]["optional"] is True


@pytest.mark.parametrize("name", (PUBLIC, FORMER))
def test_k8s_gives_the_predictor_the_public_keys_if_in_the_secret(k8s_docs, name):
    ref = _secret_refs(main_container(k8s_docs, "predictor"))[name]
    assert ref == {"name": "mlpipeline-secrets", "key": name, "optional": True}


def test_the_k8s_patch_takes_the_signing_secrets_from_the_predictor(kubectl, tmp_path):
    folder = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, folder)
    kustomization = folder / "kustomization.yaml"
    text = kustomization.read_text()
    assert f"\n#   - path: {PATCH}\n" in text  # documented, off by default
    text = text.replace("# patches:\n", "patches:\n")
    kustomization.write_text(text.replace(f"#   - path: {PATCH}", f"  - path: {PATCH}"))
    result = run_tool([kubectl, "kustomize", str(folder)])
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    predictor = _secret_refs(main_container(built, "predictor"))
    assert not set(SIGNING) & set(predictor)
    assert predictor[PUBLIC]["optional"] is False  # required: no predictor without it
    assert set(SIGNING) <= set(_secret_refs(main_container(built, "dashboard")))
