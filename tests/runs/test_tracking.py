import socket
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput, NotFound, ServiceUnavailable
from runs import (
    check_tracking,
    get_client,
    get_run,
    load_json_artifact,
    load_model,
    load_preprocessing,
    publish_result,
)


def test_unreachable_server_is_a_clear_error(unreachable_uri):
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        check_tracking(unreachable_uri, timeout=1)


@pytest.mark.parametrize("form", ["file://{}", "{}", "file://otherhost{}"])
def test_a_file_store_is_refused_before_use_naming_what_to_set(tmp_path, monkeypatch, form):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = form.format(tmp_path / "mlruns")
    # MLflow 3 raised its "maintenance mode" exception at the first run, after data loading
    with pytest.raises(ServiceUnavailable, match=r"is a file store .* MLflow 3 no longer opens; "
                       r"set MLFLOW_TRACKING_URI .* or a database file \(sqlite:///"):  # fmt: skip
        check_tracking(uri)
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("uri", ["databricks", "sqlite:///{}/mlflow.db"])
def test_stores_that_are_not_files_are_not_refused_as_file_stores(tmp_path, monkeypatch, uri):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    check_tracking(uri.format(tmp_path))  # "databricks" has no scheme, yet is no folder


def test_a_server_that_takes_the_connection_but_never_answers_is_called_hung():
    with socket.create_server(("127.0.0.1", 0)) as hung:  # listens, never reads nor answers
        uri = f"http://127.0.0.1:{hung.getsockname()[1]}"
        with pytest.raises(ServiceUnavailable, match=r"did not answer within 1 s .*hung") as info:
            check_tracking(uri, timeout=1)
    assert "Start it" not in str(info.value)  # it is running


def test_an_unreachable_server_is_named_without_its_credentials(unreachable_uri):
    with pytest.raises(ServiceUnavailable) as caught:
        check_tracking(unreachable_uri.replace("://", "://audituser:s3cretPW@"), timeout=1)
    assert "s3cretPW" not in str(caught.value) and "audituser" not in str(caught.value)
    assert unreachable_uri.replace("://", "://***@") in str(caught.value)


def test_an_unknown_run_names_the_server_without_its_credentials(mlflow_server):
    client = get_client(mlflow_server.replace("://", "://audituser:s3cretPW@"))
    with pytest.raises(NotFound, match="does not exist") as caught:
        get_run(client, "0" * 32)
    assert "s3cretPW" not in str(caught.value) and "audituser" not in str(caught.value)


def test_unknown_run_is_not_found(mlflow_server):
    client = get_client(mlflow_server)
    with pytest.raises(NotFound, match="does not exist"):
        get_run(client, "0" * 32)


def test_loading_a_model_from_an_unreachable_server_is_an_outage(unreachable_uri):
    with pytest.raises(ServiceUnavailable, match=r"did not answer|unreachable"):
        load_model("0" * 32, unreachable_uri)


def test_loading_a_model_a_run_lacks_is_invalid_input(mlflow_server):
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("tracking-tests") or client.get_experiment(
        client.create_experiment("tracking-tests")
    )
    run = client.create_run(experiment.experiment_id)
    with pytest.raises(InvalidInput, match="has no loadable model"):
        load_model(run.info.run_id, mlflow_server)


def test_results_for_a_run_deleted_meanwhile_are_refused_not_an_outage(mlflow_server):
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("tracking-tests") or client.get_experiment(
        client.create_experiment("tracking-tests")
    )
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.delete_run(run_id)
    with pytest.raises(InvalidInput, match=r"probably deleted while the job ran"):
        publish_result(client, run_id, {"eval_accuracy": 0.5}, "evaluation/x-1", "evaluation")


def test_a_result_published_by_a_machine_whose_clock_is_behind_is_the_runs_figures(
    mlflow_server, monkeypatch
):
    """MLflow shows each metric's value stamped last, and the tag written last: the second of two
    evaluations, stamped earlier by a replica whose clock is behind, showed the first's metrics
    beside tags naming itself."""
    import runs.tracking

    client = MlflowClient(mlflow_server)
    run_id = client.create_run("0").info.run_id
    publish_result(client, run_id, {"eval_accuracy": 0.5}, "evaluation/first-1", "evaluation")
    behind = runs.tracking.time.time() - 3600
    monkeypatch.setattr(runs.tracking.time, "time", lambda: behind)
    publish_result(client, run_id, {"eval_accuracy": 0.7}, "evaluation/second-1", "evaluation")
    run = client.get_run(run_id)
    assert run.data.tags["pipeline.evaluation.path"] == "evaluation/second-1"
    assert run.data.metrics["eval_accuracy"] == 0.7


@pytest.mark.parametrize(
    ("text", "says"),
    [("{not json", "is not valid JSON"), ('{"channels": "three"}', "does not describe")],
)
def test_a_damaged_preprocessing_json_is_invalid_input_not_a_crash(mlflow_server, text, says):
    client = MlflowClient(mlflow_server)
    run_id = client.create_run("0").info.run_id
    client.log_text(run_id, text, "preprocessing.json")
    with pytest.raises(InvalidInput, match=says):
        load_preprocessing(client, run_id)


def test_reading_artifacts_again_and_again_leaves_no_idle_download_threads(mlflow_server):
    """Each MLflow artifact repository starts download threads that only the cyclic collector
    ends: a dashboard gained threads with every artifact it read (soak audit, predictor)."""
    client = MlflowClient(mlflow_server)
    run_id = client.create_run("0").info.run_id
    client.log_dict(run_id, {"a": 1}, "evaluation/x/metrics.json")
    load_json_artifact(client, run_id, "evaluation/x/metrics.json")  # warm
    before = threading.active_count()
    for _ in range(3):
        assert load_json_artifact(client, run_id, "evaluation/x/metrics.json") == {"a": 1}
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.1)  # an ended pool's threads leave at their next wake-up
    assert threading.active_count() <= before, [t.name for t in threading.enumerate()]
