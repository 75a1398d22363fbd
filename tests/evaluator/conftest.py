"""Fixtures of the evaluator tests: the shared trained run and its data folder as DATA_DIR, its
evaluation, and evaluator services on free ports (in a thread, or as a subprocess)."""

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
import requests
import uvicorn

from common import Settings
from evaluator import evaluate_run
from evaluator.app import create_app
from launcher import UVICORN_HTTP
from tests.conftest import ROOT, SESSION_MARK, free_port
from tests.servers import wait_http

EXPERIMENT = "evaluator-tests"


@pytest.fixture(scope="session")
def run_id(trained_run) -> str:
    """The run id of the shared tiny model trained by the real trainer on ``demo_data``."""
    return trained_run.run_id


@pytest.fixture(scope="session")
def run_without_model(mlflow_server) -> str:
    """A run with parameters but no model and no preprocessing."""
    client = mlflow.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "data_dir", "demo")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture(scope="session")
def evaluation(mlflow_server, run_id, tmp_path_factory) -> tuple[dict, Path]:
    """``evaluate_run`` of the trained run, and the folder its result was downloaded to."""
    report = evaluate_run(run_id, mlflow_server, batch_size=7)
    out = tmp_path_factory.mktemp("downloaded")
    client = mlflow.MlflowClient(mlflow_server)
    return report, Path(client.download_artifacts(run_id, report["artifact_path"], str(out)))


class ThreadedServer:
    """An evaluator app served by uvicorn in a thread of the test process."""

    def __init__(self, settings: Settings, runner_options: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings, runner_options),
            port=self.port,
            log_level="warning",
            http=UVICORN_HTTP[1],  # the services' protocol (service.protocol)
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        wait_http(self.url + "/health", timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def make_settings(mlflow_server, data_root, tmp_path) -> Callable[..., Settings]:
    """Settings of a test service: the test MLflow, ``data_root``, a fresh embedded store."""

    def make(**overrides) -> Settings:
        values = {
            "mlflow_tracking_uri": mlflow_server,
            "data_dir": data_root,
            "store_dir": tmp_path / "store",
            "pipeline_api_token": None,
            "mongo_uri": None,
        }
        return Settings(_env_file=None, **{**values, **overrides})

    return make


@pytest.fixture
def serve(make_settings) -> Iterator[Callable[..., ThreadedServer]]:
    """Start evaluator services in threads: ``serve(**settings_overrides)`` → its server."""
    started: list[ThreadedServer] = []

    def start(runner_options: dict | None = None, **overrides) -> ThreadedServer:
        server = ThreadedServer(make_settings(**overrides), runner_options).__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__()


@pytest.fixture
def service(serve) -> ThreadedServer:
    """One evaluator service with default test settings."""
    return serve()


SUBPROCESS_APP = """
import sys, uvicorn
from evaluator.app import create_app
app = create_app(runner_options={"stale_after": float(sys.argv[2]), "heartbeat_interval": 0.5})
from launcher import UVICORN_HTTP
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            http=UVICORN_HTTP[1])
"""


@pytest.fixture
def spawn(mlflow_server, data_root, tmp_path) -> Iterator[Callable[..., tuple]]:
    """Start an evaluator in its own process: ``spawn(stale_after)`` → ``(process, url)``."""
    procs: list[subprocess.Popen] = []
    env_base = {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "DATA_DIR": str(data_root),
        "STORE_DIR": str(tmp_path / "store"),
        "OMP_NUM_THREADS": "1",
        "PATH": "/usr/bin:/bin",
        SESSION_MARK: os.environ[SESSION_MARK],
    }

    def start(stale_after: float = 30.0) -> tuple[subprocess.Popen, str]:
        port = free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [sys.executable, "-c", SUBPROCESS_APP, str(port), str(stale_after)],
            cwd=ROOT,
            env=env_base,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health", timeout=90, proc=proc)
        return proc, url

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_status(url: str, job_id: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
    """Poll ``GET /jobs/{job_id}`` until its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{url}/jobs/{job_id}", timeout=10).json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not reach {statuses} within {timeout}s: {job}")
