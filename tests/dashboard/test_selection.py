import json
import os
import uuid

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput, NotFound, ServiceUnavailable
from dashboard import download_model, download_run
from dashboard.choose import choose_run
from dashboard.selection import DOWNLOAD_JSON
from jobs import SelectionStore, get_database
from runs import recorded_model


def test_download_puts_model_and_artifacts_in_artifacts_dir(dashboard_runs, settings):
    run_id = dashboard_runs["pipeline"]
    path = download_run(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    assert path == settings.artifacts_dir / run_id
    assert (path / "model" / "MLmodel").is_file()
    assert (path / "preprocessing.json").is_file()
    assert (path / dashboard_runs["evaluation"] / "metrics.json").is_file()
    assert [p.name for p in settings.artifacts_dir.iterdir()] == [run_id]


def test_a_download_says_which_registered_version_and_evaluation_it_is(
    dashboard_runs, settings, tmp_path
):
    run_id = dashboard_runs["pipeline"]
    settings = settings.model_copy(update={"model_name": f"download-{uuid.uuid4().hex[:8]}",
                                           "run_id_file": tmp_path / "run_id.txt"})  # fmt: skip
    choice = choose_run(run_id, "hand it over", settings)
    path = download_run(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    found = json.loads((path / DOWNLOAD_JSON).read_text())
    params = MlflowClient(settings.mlflow_tracking_uri).get_run(run_id).data.params
    model_id = recorded_model(run_id, params)[0]
    assert (found["run_id"], found["model_uri"]) == (run_id, f"models:/{model_id}")
    assert found["evaluation_path"] == dashboard_runs["evaluation"]
    assert {
        "name": settings.model_name,
        "version": choice.version,
        "model_uri": f"models:/{settings.model_name}/{choice.version}",
        "aliases": [settings.model_alias],
        "evaluation_path": dashboard_runs["evaluation"],
    } in found["registered_versions"]


def test_autologged_sklearn_model_downloads(dashboard_runs, settings):
    path = download_run(
        dashboard_runs["sklearn"], settings.mlflow_tracking_uri, settings.artifacts_dir
    )
    assert "sklearn" in (path / "model" / "MLmodel").read_text()


def test_failed_download_leaves_nothing_partial_and_keeps_the_old_folder(dashboard_runs, settings):
    failed = dashboard_runs["failed"]  # a crashed run without a model
    old = settings.artifacts_dir / failed
    old.mkdir(parents=True)
    (old / "keep.txt").write_text("previous download")
    with pytest.raises(InvalidInput, match="no model logged as 'model'"):
        download_run(failed, settings.mlflow_tracking_uri, settings.artifacts_dir)
    assert sorted(os.listdir(settings.artifacts_dir)) == [failed]
    assert (old / "keep.txt").read_text() == "previous download"


def test_downloading_a_trainer_run_stopped_before_its_model_says_to_resume_it(
    mlflow_server, settings
):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"stopped-{uuid.uuid4().hex}")
    run_id = client.create_run(experiment_id, tags={"pipeline.stage": "training"}).info.run_id
    client.set_terminated(run_id, status="KILLED")  # as the trainer's stop before its model
    with pytest.raises(InvalidInput, match=r"stopped \(KILLED\) before its model.*--resume auto"):
        download_run(run_id, mlflow_server, settings.artifacts_dir)


def test_mlflow_failing_during_the_model_download_is_an_outage_not_a_missing_model(
    dashboard_runs, settings, monkeypatch
):
    import mlflow.artifacts
    import requests

    def dropped(**kwargs):
        raise requests.ConnectionError("connection reset by the tracking server")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", dropped)
    with pytest.raises(ServiceUnavailable, match=r"could not download the \w+ of run"):
        download_run(dashboard_runs["pipeline"], settings.mlflow_tracking_uri,
                     settings.artifacts_dir)  # fmt: skip
    assert os.listdir(settings.artifacts_dir) == []


def test_a_model_download_failing_here_is_not_a_run_without_a_model(
    dashboard_runs, settings, monkeypatch
):
    """MLflow's runs:/ repository reports any failed download (a full disk) as a missing model
    (a download of the recorded model, models:/<id>, is told apart the same way): the run has
    one, so the download failed here (tests/runs: the same under a real full disk)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    download = mlflow.artifacts.download_artifacts

    def swallowed(**kwargs):
        if not str(kwargs.get("artifact_uri")).startswith("models:/"):  # the run's other files
            return download(**kwargs)
        raise MlflowException(
            "Failed to download artifacts from path 'model', please ensure that the path is "
            "correct.", error_code=RESOURCE_DOES_NOT_EXIST,
        )  # fmt: skip

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", swallowed)
    run_id = dashboard_runs["pipeline"]
    with pytest.raises(ServiceUnavailable, match=r"models:/m-\w+ could not be downloaded"):
        download_run(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    assert os.listdir(settings.artifacts_dir) == []


def test_unknown_run_is_not_found(mlflow_server, settings):
    with pytest.raises(NotFound, match="does not exist"):
        download_run("0" * 32, mlflow_server, settings.artifacts_dir)


def test_download_is_recorded_as_a_download_and_chooses_nothing(
    dashboard_runs, settings, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    run_id = dashboard_runs["pipeline"]
    store = SelectionStore(get_database(settings))
    got = download_model(run_id, settings, store, selected_by="tester")
    assert not (tmp_path / "run_id.txt").exists()
    [record] = store.recent()
    assert (record["action"], record["run_id"], record["selected_by"]) == (
        "download",
        run_id,
        "tester",
    )
    assert record["model_uri"].startswith("models:/m-") and record["version"] is None
    assert record["metrics"]["best_val_auc"] == pytest.approx(0.8)
    assert record["artifacts_path"] == str(got.artifacts_path.resolve())
