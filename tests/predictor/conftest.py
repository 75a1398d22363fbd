"""A predictor on a real uvicorn (in a thread) against the session's MLflow server."""

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from common import Settings
from dashboard.choose import choose_run
from predictor.app import create_app
from runs import run_model_uri
from tests.conftest import LiveServer, log_untrained_run

TOKEN = "predictor-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def served_runs(mlflow_server, demo_data) -> list[str]:
    """Two runs the predictor can serve (never evaluated: choose them with the confirmation)."""
    return [log_untrained_run(mlflow_server, demo_data, seed) for seed in (1, 2)]


@pytest.fixture(scope="session")
def modality_runs(mlflow_server, demo_data) -> dict[str, str]:
    """Servable runs of the demo data's classes by the DICOM inputs they take: "DMS", "XC",
    "DMS+XC", and "DMS frames" (multi-frame DMS files too)."""
    takes = {"DMS": 11, "XC": 12, "DMS+XC": 13, "DMS frames": 14}
    return {m: log_untrained_run(mlflow_server, demo_data, seed,
                                 modalities=m.split()[0].split("+"), multi_frame="frames" in m)
            for m, seed in takes.items()}  # fmt: skip


@pytest.fixture
def settings(mlflow_server, tmp_path) -> Settings:
    """A registered model name of its own, a short poll interval, the token on; versions
    aliased by hand (MLflow's own client) served too, as these tests need: the default refusal
    of unsigned versions is tested in test_signature.py."""
    return Settings(
        _env_file=None,
        mlflow_tracking_uri=mlflow_server,
        store_dir=tmp_path / "store",
        mongo_uri=None,
        run_id_file=tmp_path / "run_id.txt",
        model_name=f"predictor-{uuid.uuid4().hex[:8]}",
        predictor_poll_s=0.5,
        pipeline_api_token=TOKEN,
        predictor_serve_unsigned=True,
    )


@pytest.fixture
def predictor(settings) -> Iterator[str]:
    with LiveServer(create_app(settings)) as server:
        yield server.url


def post_images(url: str, paths: list[Path], token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in paths]
    return requests.post(f"{url}/predict", files=files, headers=headers, timeout=60)


def get_ready(url: str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{url}/ready", headers=headers, timeout=10)


def wait_ready(url: str, version: str | None = None, timeout: float = 60) -> dict:
    """The ``/ready`` answer once the predictor at ``url`` serves ``version`` (any: None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = get_ready(url)
        if r.status_code == 200 and (version is None or r.json()["version"] == version):
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"{url} not serving version {version} after {timeout}s: {r.text}")


@dataclass
class ClientLoop:
    """Posts an image again and again in a thread; keeps every answer's status and version."""

    url: str
    image: Path
    statuses: list[int] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            r = post_images(self.url, [self.image])
            self.statuses.append(r.status_code)
            if r.status_code == 200:
                self.versions.append(r.json()["version"])

    def __enter__(self) -> "ClientLoop":
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(60)


@pytest.fixture(scope="session")
def other_classes_runs(mlflow_server, demo_data, tmp_path_factory) -> list[str]:
    """Two servable runs of the same two of the demo data's three classes."""
    data = tmp_path_factory.mktemp("two-of-three")
    for split in ("train", "test"):
        for cls in sorted(p.name for p in (demo_data / "train").iterdir())[:2]:
            shutil.copytree(demo_data / split / cls, data / split / cls)
    return [log_untrained_run(mlflow_server, data, seed=seed) for seed in (6, 7)]


@pytest.fixture(scope="session")
def other_classes_run(other_classes_runs) -> str:
    """A servable run of two of the demo data's three classes."""
    return other_classes_runs[0]


def serve_three_classes(predictor: str, settings, served_runs: list[str]) -> None:
    """Choose a run of the demo data's three classes; return once the predictor serves it."""
    choose_run(served_runs[0], "three classes", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")


def move_alias_by_hand(settings, run_id: str) -> str:
    """Register ``run_id``'s model and point the alias at it with MLflow's own client, as
    MLflow's UI does: no choice, no confirmation."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    version = mlflow.register_model(run_model_uri(run_id), settings.model_name).version
    MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(
        settings.model_name, settings.model_alias, version
    )
    return str(version)


def alias_a_foreign_model(settings) -> str:
    """Register a pyfunc model of another kind (not this pipeline's) and point the alias at it;
    its version."""

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [0] * len(model_input)

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment("foreign-models")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant())
    version = mlflow.register_model(info.model_uri, settings.model_name).version
    MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(
        settings.model_name, settings.model_alias, version
    )
    return version
