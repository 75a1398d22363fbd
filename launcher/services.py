"""The one list of services: `make demo` runs these commands natively, docker-compose.yml and the
Kubernetes manifests run the same commands in containers (a test keeps them in step).

Commands hold placeholders filled by ``Service.render``: ``{host}`` (bind address), ``{port}``
(defaults to the service's port), ``{state}`` (folder of the MLflow database and artifacts),
``{data}`` (the data folder) and ``{experiment}`` (the trainer's MLflow experiment).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    """A long-running service or one-shot job of the pipeline."""

    name: str
    command: tuple[str, ...]
    port: int | None = None
    health_path: str | None = None
    one_shot: bool = False
    env: tuple[tuple[str, str], ...] = ()
    """Environment variables the command needs wherever it runs (`make demo`, the image's
    default, Compose, Kubernetes: a test keeps them in step)."""

    def render(self, **values: str | int) -> list[str]:
        """The command with its placeholders filled, for example ``host="0.0.0.0"``.

        ``{port}`` defaults to the service's own port.
        """
        values = {"port": self.port, **values}
        return [part.format(**values) for part in self.command]


UVICORN_HTTP = ("--http", "service.protocol:BoundedHead")
"""The services' HTTP/1.1 protocol: uvicorn's httptools one with a bound on a request's head (431
past 64 KB, ``service.protocol``); uvicorn's own puts none, so one header could fill the memory.
uvicorn's ``--http`` takes an import string beside its names (``Config.http``); the test that
starts a service by this command (tests/service/test_request_head.py) fails if an upgrade stops
it."""

MLFLOW = Service(
    "mlflow",
    (
        "mlflow",
        "server",
        "--host",
        "{host}",
        "--port",
        "{port}",
        "--backend-store-uri",
        "sqlite:///{state}/mlflow.db",
        "--artifacts-destination",
        "{state}/artifacts",
        "--serve-artifacts",
        "--allowed-hosts",
        "localhost,localhost:{port},127.0.0.1,127.0.0.1:{port},mlflow,mlflow:{port}",
    ),
    port=5000,
    health_path="/health",
    # MLflow 3 starts, beside the server, a job runner and seven huey consumers for its GenAI
    # jobs (LLM judges, trace roll-ups), which this pipeline never submits: measured, 8 more
    # processes, 2.3 GB of memory in all against 1.0 GB (the Kubernetes limit is 2 GiB), 27 CPU
    # seconds to start against 11, and a queue folder in /dev/shm that it never removes.
    env=(("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),),
)
TRAINER = Service(
    "trainer",
    # --resume auto: a trainer started again after its container, pod or demo was lost continues
    # the experiment's unfinished run from its last checkpoint (a finished one: a new run).
    (
        "python",
        "-m",
        "trainer",
        "--data-dir",
        "{data}",
        "--experiment",
        "{experiment}",
        "--resume",
        "auto",
    ),
    one_shot=True,
)
EVALUATOR = Service(
    "evaluator",
    ("uvicorn", "evaluator.app:app", *UVICORN_HTTP, "--host", "{host}", "--port", "{port}"),
    port=5006,
    health_path="/health",
)
EXPLAINER = Service(
    "explainer",
    ("uvicorn", "explainer.app:app", *UVICORN_HTTP, "--host", "{host}", "--port", "{port}"),
    port=5005,
    health_path="/health",
)
PREDICTOR = Service(
    "predictor",
    ("uvicorn", "predictor.app:app", *UVICORN_HTTP, "--host", "{host}", "--port", "{port}"),
    port=5007,
    health_path="/health",
)
DASHBOARD = Service(
    "dashboard",
    (
        "streamlit",
        "run",
        "dashboard/dashboard.py",
        "--server.address",
        "{host}",
        "--server.port",
        "{port}",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--browser.serverAddress",  # set: no look-up of an external IP at start
        "localhost",
        "--client.toolbarMode",
        "minimal",
        # Only these names in the Host header of the WebSocket (every tab's data goes over it):
        # a web page whose domain is rebound to 127.0.0.1 sends its own name and is refused.
        # Streamlit ignores the port. Behind a proxy or an Ingress, repeat the flag with its
        # host name (docs/deployment.md); STREAMLIT_SERVER_ALLOWED_HOSTS is ignored with it.
        "--server.allowedHosts",
        "localhost",
        "--server.allowedHosts",
        "127.0.0.1",
    ),
    port=8501,
    health_path="/_stcore/health",
)

SERVICES: tuple[Service, ...] = (MLFLOW, TRAINER, EVALUATOR, EXPLAINER, PREDICTOR, DASHBOARD)
