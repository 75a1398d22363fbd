"""A predictor on a real uvicorn (in a thread) against the session's MLflow server."""

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest
import requests
import torch

from common import Settings
from predictor.app import create_app
from runs import Preprocessing, build_model, log_classifier
from tests.conftest import LiveServer

TOKEN = "predictor-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def log_untrained_run(uri: str, data_dir: Path, seed: int, point: dict | None = None) -> str:
    """A run with a pipeline model (untrained weights: serving does not care), fast to make;
    ``point``: the operating point the model carries."""
    from dataloader import load_dataset

    ds = load_dataset(data_dir, image_size=32, channels=3, splits=("train",), val_fraction=0)
    pp = Preprocessing(image_size=(32, 32), channels=3, class_names=ds.class_names,
                       mean=ds.stats["mean"], std=ds.stats["std"])  # fmt: skip
    torch.manual_seed(seed)
    model = build_model("smallcnn", 3, len(ds.class_names), pp.mean, pp.std).eval()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("predictor-tests")
    with mlflow.start_run(run_name=f"untrained-{seed}") as run:
        mlflow.log_dict(pp.model_dump(mode="json"), "preprocessing.json")
        log_classifier(model, pp, "model", operating_point=point)
    return run.info.run_id


@pytest.fixture(scope="session")
def served_runs(mlflow_server, demo_data) -> list[str]:
    """Two runs the predictor can serve (never evaluated: choose them with the confirmation)."""
    return [log_untrained_run(mlflow_server, demo_data, seed) for seed in (1, 2)]


@pytest.fixture
def settings(mlflow_server, tmp_path) -> Settings:
    """A registered model name of its own, a short poll interval, the token on."""
    return Settings(
        _env_file=None,
        mlflow_tracking_uri=mlflow_server,
        store_dir=tmp_path / "store",
        mongo_uri=None,
        run_id_file=tmp_path / "run_id.txt",
        model_name=f"predictor-{uuid.uuid4().hex[:8]}",
        predictor_poll_s=0.5,
        pipeline_api_token=TOKEN,
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
