"""Opening the trainer's MLflow run (``trainer.mlflow_run``)."""

import uuid

import mlflow
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.client import TrackingServiceClient

from trainer.mlflow_run import start


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
