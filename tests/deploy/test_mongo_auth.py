"""MongoDB with authentication, and each service with its own least-privilege user, in k8s/,
docker-compose.yml, the CI workflow and the documented commands: the evaluator and explainer
connect as `jobs`, the dashboard as `trail`, the predictor not at all; the root user is
MongoDB's first start's and the operators' alone (k8s/mongodb-users.js;
tests/deploy/test_mongo_users.py checks the privileges)."""

import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.deploy.conftest import (
    K8S_DIR,
    ROOT,
    containers,
    main_container,
    pod_spec,
    run_tool,
    workloads,
)
from tests.deploy.test_mongo_users import SCRIPT, script_users

USER_OF = {"evaluator": "jobs", "explainer": "jobs", "dashboard": "trail"}
URI_KEY = {"jobs": "MONGO_JOBS_URI", "trail": "MONGO_TRAIL_URI"}
ROOT_KEYS = {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"}
INIT_DIR = "/docker-entrypoint-initdb.d"


def secret_template(k8s_docs: list[dict]) -> dict[str, str]:
    return next(d for d in k8s_docs if d["kind"] == "Secret")["stringData"]


def secret_keys(container: dict) -> dict[str, str]:
    """{environment variable: key of the Secret} of a container."""
    assert not any("secretRef" in source for source in container.get("envFrom", []))
    return {
        env["name"]: env["valueFrom"]["secretKeyRef"]["key"]
        for env in container.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }


def check_uri(uri: str, user: str, host: str) -> None:
    parts = urlsplit(uri)
    assert parts.username == user and parts.hostname == host and parts.port == 27017, uri
    assert parse_qs(parts.query) == {"authSource": ["mlpipeline"]}, uri


@pytest.mark.parametrize("service", sorted(USER_OF))
def test_each_k8s_service_connects_as_its_own_user(k8s_docs, service):
    keys = secret_keys(main_container(k8s_docs, service))
    user = USER_OF[service]
    assert keys["MONGO_URI"] == URI_KEY[user]
    check_uri(secret_template(k8s_docs)[URI_KEY[user]], user, "mongodb")


def test_no_k8s_service_gets_the_root_user(k8s_docs):
    for workload in workloads(k8s_docs):
        for container in containers(workload):
            used = set(secret_keys(container).values())
            if container["name"] == "mongodb":
                continue
            assert not used & (ROOT_KEYS | {"MONGO_URI"}), container["name"]
            assert not any("PASSWORD" in key for key in used), container["name"]
    predictor = secret_keys(main_container(k8s_docs, "predictor"))
    assert not {key for key in predictor.values() if key.startswith("MONGO")}


def test_the_secret_template_has_the_users_passwords_and_no_root_uri(k8s_docs):
    template = secret_template(k8s_docs)
    assert "MONGO_URI" not in template  # the root user's: no service may get it
    for user in script_users():
        assert template[user["password"]] == "CHANGE-ME"
        assert urlsplit(template[URI_KEY[user["user"]]]).password == "CHANGE-ME"


def test_mongodb_gets_the_users_passwords_and_mounts_the_script(k8s_docs):
    container = main_container(k8s_docs, "mongodb")
    keys = secret_keys(container)
    for name in ROOT_KEYS | {u["password"] for u in script_users()}:
        assert keys[name] == name
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == INIT_DIR)
    assert mount["readOnly"] is True
    workload = next(w for w in workloads(k8s_docs) if w["metadata"]["name"] == "mongodb")
    volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "mongodb-users"


def test_kustomize_makes_the_script_s_configmap_and_mounts_it(kubectl):
    result = run_tool([kubectl, "kustomize", str(K8S_DIR)])
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    config = next(d for d in built if d["metadata"]["name"].startswith("mongodb-users-"))
    assert config["data"] == {"mongodb-users.js": SCRIPT.read_text()}
    assert config["metadata"]["namespace"] == "mlpipeline"
    assert config["metadata"]["labels"] == {"app.kubernetes.io/part-of": "mlpipeline"}
    mongodb = next(d for d in built if d["kind"] == "StatefulSet")
    names = [v.get("configMap", {}).get("name") for v in pod_spec(mongodb)["volumes"]]
    assert config["metadata"]["name"] in names  # the hashed name: a changed script rolls the pod


PASSWORDS = (
    "MONGO_INITDB_ROOT_PASSWORD",
    "MONGO_INITDB_JOBS_PASSWORD",
    "MONGO_INITDB_TRAIL_PASSWORD",
)


@pytest.mark.parametrize("password", ["", "CHANGE-ME"])
@pytest.mark.parametrize("name", PASSWORDS)
def test_mongodb_refuses_the_template_passwords(k8s_docs, tmp_path, name, password):
    """Before the entrypoint writes anything: MongoDB keeps the passwords of its first start."""
    command = main_container(k8s_docs, "mongodb")["command"]
    entrypoint = tmp_path / "docker-entrypoint.sh"  # stands in for the image's, records its args
    entrypoint.write_text('#!/bin/sh\necho "started $*"\n')
    entrypoint.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", **dict.fromkeys(PASSWORDS, "a-real-password-0123")}
    env[name] = password
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "started" not in refused.stdout
    assert f"{name} is empty or CHANGE-ME: create the Secret mlpipeline-secrets" in refused.stderr
    env[name] = "a-real-password-0123456789"
    started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert started.returncode == 0 and started.stdout == "started mongod --bind_ip_all\n"


@pytest.mark.parametrize("service", sorted(USER_OF))
def test_each_compose_service_connects_as_its_own_user(compose, service):
    user = USER_OF[service]
    uri = compose["services"][service]["environment"]["MONGO_URI"]
    variable = f"MONGO_{user.upper()}_PASSWORD"
    assert re.fullmatch(rf"mongodb://{user}:\$\{{{variable}:\?[^}}]+\}}@mongo:27017/\?[^ ]+", uri)
    check_uri(uri.replace(uri.split("@")[0], f"mongodb://{user}:x"), user, "mongo")


def test_no_other_compose_service_gets_mongodb(compose):
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        if name not in USER_OF:
            assert "MONGO_URI" not in env, name
        if name != "mongo":
            assert "MONGO_ROOT_PASSWORD" not in yaml.safe_dump(env), name


def test_compose_mongo_requires_its_passwords_and_runs_the_script(compose):
    mongo = compose["services"]["mongo"]
    env = mongo["environment"]
    assert env["MONGO_INITDB_ROOT_USERNAME"] == "root"
    required = {"MONGO_INITDB_ROOT_PASSWORD": "MONGO_ROOT_PASSWORD"}
    required |= {u["password"]: f"MONGO_{u['user'].upper()}_PASSWORD" for u in script_users()}
    for name, variable in required.items():  # required, as PIPELINE_API_TOKEN: no default
        assert re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", env[name]), name
    assert f"./k8s/mongodb-users.js:{INIT_DIR}/mongodb-users.js:ro" in mongo["volumes"]


def run_script(workflow: dict, job: str) -> str:
    return "\n".join(step.get("run", "") for step in workflow["jobs"][job]["steps"])


def test_ci_writes_every_key_of_the_secret_template(workflow, k8s_docs):
    script = run_script(workflow, "deploy-prod")
    for key in secret_template(k8s_docs):
        assert f"--from-literal={key}=" in script, key
    assert "--from-literal=MONGO_URI=" not in script
    # the users of the script, updated at every deploy once MongoDB is up
    rollout = script.index("rollout status statefulset/mongodb")
    assert script.index(f"--file {INIT_DIR}/mongodb-users.js") > rollout


def test_ci_compose_jobs_set_the_mongodb_passwords(workflow):
    variables = ("MONGO_ROOT_PASSWORD", "MONGO_JOBS_PASSWORD", "MONGO_TRAIL_PASSWORD")
    for job in ("compose-smoke", "deploy-dev"):
        env = workflow["jobs"][job]["env"]
        assert all(env[v] for v in variables), job
        assert f"--file {INIT_DIR}/mongodb-users.js" in run_script(workflow, job), job
    for variable in variables:
        assert workflow["jobs"]["deploy-dev"]["env"][variable] == f"${{{{ secrets.{variable} }}}}"


def test_ci_smoke_checks_the_job_user_is_refused_the_trail(workflow):
    script = run_script(workflow, "compose-smoke")
    assert "'db.selections.findOne()' 'db.jobs.drop()'" in script


@pytest.mark.parametrize("doc", ["README.md", "docs/deployment.md"])
def test_documented_secret_commands_create_every_key(k8s_docs, doc):
    text = (ROOT / doc).read_text()
    command = text[text.index("create secret generic mlpipeline-secrets") :]
    command = command[: command.index("```")]
    for key in secret_template(k8s_docs):
        assert f"--from-literal={key}=" in command, (doc, key)
    assert "--from-literal=MONGO_URI=" not in command


@pytest.mark.parametrize("doc", ["README.md", "docs/deployment.md"])
def test_documented_compose_start_sets_the_mongodb_passwords(doc):
    text = (ROOT / doc).read_text()
    section = text[text.index("## Docker Compose") :]
    block = section[: section.index("docker compose up")]
    for variable in ("MONGO_ROOT_PASSWORD", "MONGO_JOBS_PASSWORD", "MONGO_TRAIL_PASSWORD"):
        assert f"export {variable}=" in block, (doc, variable)
