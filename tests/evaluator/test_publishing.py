"""Results are published whole, and an MLflow outage is an outage: a real MLflow server of this
module's own is killed (``kill -9`` of its process group) in the middle of an evaluation."""

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from common import ServiceUnavailable, spawn_tethered
from dataloader.synth import CLASS_NAMES
from evaluator import evaluate_run
from evaluator.evaluate import run_job
from runs import Preprocessing, build_model, contract
from tests.conftest import free_port
from tests.servers import mlflow_command, stop_group, wait_http


class KillableMlflow:
    """An MLflow server on a fixed port and store that a test can kill and start again."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv, env = mlflow_command(self.state, self.port)
        log = open(self.state / "server.log", "a")  # noqa: SIM115 - the server holds it
        self.proc = spawn_tethered(  # its own group, ended with the test process
            argv, cwd=self.state, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        wait_http(self.uri + "/health", timeout=120, proc=self.proc)

    def kill(self) -> None:
        """``kill -9`` of the server and its helpers, at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)


@pytest.fixture(scope="module")
def killable(tmp_path_factory) -> Iterator[KillableMlflow]:
    server = KillableMlflow(tmp_path_factory.mktemp("killable-mlflow"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def small_run(killable, demo_data) -> str:
    """A run in the trainer's layout with an untrained SmallCNN (speed and outages only)."""
    mlflow.set_tracking_uri(killable.uri)
    mlflow.set_experiment("publishing")
    pp = Preprocessing(
        image_size=(32, 32), channels=3, class_names=list(CLASS_NAMES), mean=[0.5] * 3,
        std=[0.25] * 3,
    )  # fmt: skip
    model = build_model("smallcnn", 3, len(CLASS_NAMES)).eval()
    with mlflow.start_run() as run:
        mlflow.log_params({"data_dir": str(demo_data), "class_names": json.dumps(CLASS_NAMES)})
        mlflow.log_dict(pp.model_dump(mode="json"), contract.PREPROCESSING_JSON)
        mlflow.pytorch.log_model(
            model,
            name="model",
            serialization_format="pickle",
            input_example=np.zeros((1, 3, 32, 32), np.float32),
            pip_requirements=["torch"],
        )
    mlflow.set_tracking_uri("")
    return run.info.run_id


def kill_at(server: KillableMlflow, stage: str):
    """A progress callback that kills the server when the evaluation reaches ``stage``."""

    def on_progress(fraction: float, now: str) -> None:
        if now.startswith(stage) and server.proc is not None and server.proc.poll() is None:
            server.kill()

    return on_progress


def test_mlflow_killed_during_the_upload_leaves_the_previous_result_current(
    killable, small_run, demo_data, tmp_path
):
    first = evaluate_run(small_run, killable.uri, data_dir=demo_data)
    client = MlflowClient(killable.uri)
    history = client.get_metric_history(small_run, "eval_accuracy")
    try:
        with pytest.raises(ServiceUnavailable, match="previous evaluation stays current"):
            evaluate_run(
                small_run, killable.uri, data_dir=demo_data, on_progress=kill_at(killable, "upl")
            )
    finally:
        killable.start()
    run = client.get_run(small_run)
    current = contract.evaluation_dir(run.data.tags)
    assert current == first["artifact_path"]
    path = client.download_artifacts(small_run, f"{current}/{contract.METRICS_JSON}", tmp_path)
    assert (
        json.loads(Path(path).read_text())["overall"]["accuracy"]["value"]
        == (first["overall"]["accuracy"]["value"])
    )
    assert client.get_metric_history(small_run, "eval_accuracy") == history


def test_a_result_is_current_only_after_the_publishing_step(killable, small_run, demo_data):
    client = MlflowClient(killable.uri)
    before = contract.evaluation_dir(client.get_run(small_run).data.tags)

    def refuse() -> None:
        raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError, match="lease lost"):
        evaluate_run(small_run, killable.uri, data_dir=demo_data, before_publish=refuse)
    assert contract.evaluation_dir(client.get_run(small_run).data.tags) == before


def test_mlflow_killed_while_the_model_loads_is_an_outage_not_a_missing_model(
    killable, small_run, demo_data
):
    try:
        with pytest.raises(ServiceUnavailable, match="load the model of run"):
            evaluate_run(
                small_run, killable.uri, data_dir=demo_data, on_progress=kill_at(killable, "load")
            )
    finally:
        killable.start()


def _job(run_id: str, data_dir: Path, tries: int) -> dict:
    return {
        "job_id": "5f0c0ffee5f0c0ffee5f0c0f",
        "run_id": run_id,
        "tries": tries,
        "inputs": {"data_dir": str(data_dir), "batch_size": 64, "tta": "none"},
    }


def test_a_job_retried_after_it_published_answers_with_the_published_result(
    killable, small_run, demo_data
):
    """The service died between publishing and recording the job: the requeued try (a new
    ``tries``) must not publish the same evaluation a second time."""
    first = run_job(_job(small_run, demo_data, 1), tracking_uri=killable.uri, data_root=demo_data)
    client = MlflowClient(killable.uri)
    history = client.get_metric_history(small_run, "eval_accuracy")
    again = run_job(_job(small_run, demo_data, 2), tracking_uri=killable.uri, data_root=demo_data)
    assert again == json.loads(json.dumps(first))
    assert contract.evaluation_dir(client.get_run(small_run).data.tags) == first["artifact_path"]
    assert client.get_metric_history(small_run, "eval_accuracy") == history
    folders = {a.path for a in client.list_artifacts(small_run, contract.EVALUATION_DIR)}
    assert f"{contract.EVALUATION_DIR}/{_job(small_run, demo_data, 2)['job_id']}-2" not in folders


def test_a_retried_job_evaluates_again_once_another_result_is_current(
    killable, small_run, demo_data
):
    run_job(_job(small_run, demo_data, 1), tracking_uri=killable.uri, data_root=demo_data)
    other = evaluate_run(small_run, killable.uri, data_dir=demo_data)  # made current after it
    again = run_job(_job(small_run, demo_data, 3), tracking_uri=killable.uri, data_root=demo_data)
    assert again["artifact_path"].endswith("-3")
    assert again["artifact_path"] != other["artifact_path"]
