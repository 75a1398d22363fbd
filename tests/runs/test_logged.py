"""Which model a run's training logged (``runs.logged``): records that fail closed."""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from common import Conflict, InvalidInput
from runs import (
    MODEL_RECORD_KEY,
    RECORDS,
    RECORDS_KEY,
    load_model,
    load_preprocessing,
    log_classifier,
    recorded_model,
)
from tests.conftest import log_untrained_run
from tests.tampering import log_over, other_module

RECORD = f"m-{'a' * 32} {'f' * 64}"


def test_a_run_trained_before_the_records_records_nothing():
    assert recorded_model("r", {"weights_digest": "d" * 64}) is None


def test_a_marked_run_without_a_record_is_refused_saying_how_to_go_on():
    with pytest.raises(InvalidInput, match=r"records no model .* --resume auto\) or train again"):
        recorded_model("r", {RECORDS_KEY: RECORDS})


@pytest.mark.parametrize(
    "record", ["m-1 " + "f" * 64, f"m-{'a' * 32} ", f"m-{'a' * 32} {'F' * 64}"]
)
def test_a_record_of_another_form_is_refused(record):
    with pytest.raises(InvalidInput, match=r"not a record of this pipeline .* train a new one"):
        recorded_model("r", {MODEL_RECORD_KEY: record})


def test_a_record_set_before_the_training_logged_its_model_is_refused_before_logging(
    mlflow_server, demo_data
):
    run_id = log_untrained_run(mlflow_server, demo_data, seed=71)
    client = MlflowClient(mlflow_server)
    pp = load_preprocessing(client, run_id)
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("preset-records")
    with mlflow.start_run() as run:
        mlflow.log_param(MODEL_RECORD_KEY, RECORD)  # someone else, while it trains
        with pytest.raises(Conflict, match="that its training never logged: someone else"):
            log_classifier(other_module(mlflow_server, run_id, seed=72), pp, "model")
    found = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [m for m in found if m.source_run_id == run.info.run_id] == []  # nothing logged


def test_the_loader_refuses_a_run_whose_recorded_model_is_gone(mlflow_server, demo_data):
    """Not the model MLflow finds instead (one logged into the run since), loaded unchecked."""
    run_id = log_untrained_run(mlflow_server, demo_data, seed=73)
    client = MlflowClient(mlflow_server)
    client.delete_logged_model(recorded_model(run_id, client.get_run(run_id).data.params)[0])
    log_over(mlflow_server, run_id, seed=74)
    with pytest.raises(InvalidInput, match="its training logged is gone"):
        load_model(run_id, mlflow_server)
