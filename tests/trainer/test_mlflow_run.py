"""Opening the trainer's MLflow run and logging its model (``trainer.mlflow_run``)."""

import contextlib
import errno
import uuid
from collections.abc import Iterator

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.client import TrackingServiceClient

from common import Conflict
from runs import load_preprocessing, recorded_model
from tests.conftest import log_untrained_run
from tests.tampering import other_module
from trainer.mlflow_run import log_model, start, store_failure


def test_a_run_lands_in_its_experiment_when_another_trainer_creates_it_meanwhile(
    mlflow_server, monkeypatch
):
    name = f"race-{uuid.uuid4().hex[:8]}"
    lookup = TrackingServiceClient.get_experiment_by_name
    calls = []

    def created_meanwhile(self, experiment_name):
        calls.append(experiment_name)
        if experiment_name == name and len(calls) == 2:  # MLflow's own look-up, after ours
            MlflowClient(mlflow_server).create_experiment(name)  # the other trainer, now
            return None
        return lookup(self, experiment_name)

    monkeypatch.setattr(TrackingServiceClient, "get_experiment_by_name", created_meanwhile)
    mlflow.set_tracking_uri(mlflow_server)
    try:
        run_id = start(name, "raced", mlflow_server)
    finally:
        mlflow.end_run()
    assert len(calls) >= 2  # the race happened
    experiment = MlflowClient(mlflow_server).get_experiment_by_name(name)
    assert MlflowClient(mlflow_server).get_run(run_id).info.experiment_id == (
        experiment.experiment_id
    )


@contextlib.contextmanager
def _in_a_run(tmp_path, location: str) -> Iterator[str]:
    """An active run of a SQLite tracking store whose experiment keeps artifacts at
    ``location``; yields the store's URI (the tracking URI before is set back after)."""
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'tracking.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=MlflowClient(uri).create_experiment("s", location)):
            yield uri
    finally:
        mlflow.set_tracking_uri(before)


def test_a_full_disk_is_said_to_be_one_though_the_error_names_no_file(tmp_path):
    """Copies into a full local store fail without a file name (``shutil.copyfileobj``)."""
    with _in_a_run(tmp_path, f"file://{tmp_path / 'art'}") as uri:
        said = store_failure(OSError(errno.ENOSPC, "No space left on device"), uri)
    assert said.startswith(f"no space left while writing this run's artifacts (to {tmp_path}")
    assert "--resume auto" in said


def test_an_error_of_a_folder_beside_the_artifact_store_is_not_blamed_on_it(tmp_path):
    """``/data/ml`` is no parent of ``/data/mlruns/...``: the error is said as it is."""
    beside = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ml"))
    inside = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "mlruns"))
    with _in_a_run(tmp_path, f"file://{tmp_path / 'mlruns'}") as uri:
        assert store_failure(beside, uri) is None
        assert store_failure(inside, uri).startswith("this run's artifacts cannot be written")


def test_logging_the_model_again_leaves_the_run_the_one_model_it_records(mlflow_server, demo_data):
    """A retry of the final logging after the model was recorded (the outage hit a later step)
    logs no second model; a LoggedModel that a try cut short left is deleted; a model of other
    weights is refused without deleting the recorded one."""
    run_id = log_untrained_run(mlflow_server, demo_data, seed=81)
    client = MlflowClient(mlflow_server)
    experiment = client.get_run(run_id).info.experiment_id
    client.create_logged_model(experiment, name="model", source_run_id=run_id)  # cut short
    preprocessing = load_preprocessing(client, run_id)
    mlflow.set_tracking_uri(mlflow_server)
    with mlflow.start_run(run_id=run_id):
        log_model(other_module(mlflow_server, run_id, seed=81), preprocessing)  # the same weights
    with pytest.raises(Conflict, match="other weights"), mlflow.start_run(run_id=run_id):
        log_model(other_module(mlflow_server, run_id, seed=82), preprocessing)
    [model] = client.search_logged_models([experiment], f"source_run_id = '{run_id}'")
    assert model.model_id == recorded_model(run_id, client.get_run(run_id).data.params)[0]
