import os

import pytest

from common import InvalidInput, NotFound, Settings
from dashboard import RUN_ID_FILE, download_run, select_run, select_top
from jobs import SelectionStore, get_database


@pytest.fixture
def settings(mlflow_server, tmp_path) -> Settings:
    return Settings(
        _env_file=None,
        mlflow_tracking_uri=mlflow_server,
        artifacts_dir=tmp_path / "artifacts",
        store_dir=tmp_path / "store",
        mongo_uri=None,
    )


def test_download_puts_model_and_artifacts_in_artifacts_dir(dashboard_runs, settings):
    run_id = dashboard_runs["pipeline"]
    path = download_run(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    assert path == settings.artifacts_dir / run_id
    assert (path / "model" / "MLmodel").is_file()
    assert (path / "preprocessing.json").is_file()
    assert (path / dashboard_runs["evaluation"] / "metrics.json").is_file()
    assert [p.name for p in settings.artifacts_dir.iterdir()] == [run_id]


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


def test_unknown_run_is_not_found(mlflow_server, settings):
    with pytest.raises(NotFound, match="does not exist"):
        download_run("0" * 32, mlflow_server, settings.artifacts_dir)


def test_select_writes_run_id_file_and_records_the_choice(dashboard_runs, settings, tmp_path):
    run_id = dashboard_runs["pipeline"]
    store = SelectionStore(get_database(settings))
    chosen = select_run(run_id, settings, store, run_id_dir=tmp_path, selected_by="tester")
    assert (tmp_path / RUN_ID_FILE).read_text().strip() == run_id
    assert chosen.run_id_file == tmp_path / RUN_ID_FILE
    [record] = store.recent()
    assert record["run_id"] == run_id
    assert record["model_uri"] == f"runs:/{run_id}/model"
    assert record["selected_by"] == "tester"
    assert record["metrics"]["best_val_auc"] == pytest.approx(0.8)
    assert "eval_accuracy" in record["metrics"]
    assert record["artifacts_path"] == str((settings.artifacts_dir / run_id).resolve())


def test_run_id_file_goes_to_the_working_directory_by_default(
    dashboard_runs, settings, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    select_run(dashboard_runs["bare"], settings)
    assert (tmp_path / RUN_ID_FILE).read_text() == dashboard_runs["bare"] + "\n"


def test_run_id_file_setting_places_it_on_a_shared_volume(dashboard_runs, settings, tmp_path):
    target = tmp_path / "shared-volume" / "run_id.txt"
    chosen = select_run(dashboard_runs["bare"], settings.model_copy(update={"run_id_file": target}))
    assert chosen.run_id_file == target
    assert target.read_text() == dashboard_runs["bare"] + "\n"


def test_top_k_downloads_the_best_runs_and_names_the_best(dashboard_runs, settings, tmp_path):
    store = SelectionStore(get_database(settings))
    chosen = select_top(
        settings, dashboard_runs["experiment"], "val_auc", 2, True, store, run_id_dir=tmp_path
    )
    # child-trial has val_auc 0.7, every pipeline run 0.8: the best two are pipeline runs.
    ids = {c.run_id for c in chosen}
    assert len(ids) == 2 and dashboard_runs["child"] not in ids
    assert all(c.metrics["val_auc"] == pytest.approx(0.8) for c in chosen)
    assert (tmp_path / RUN_ID_FILE).read_text().strip() == chosen[0].run_id
    assert all((settings.artifacts_dir / i / "model" / "MLmodel").exists() for i in ids)
    assert len(store.recent()) == 2


def test_top_k_with_a_metric_no_run_has_says_so(dashboard_runs, settings):
    with pytest.raises(InvalidInput, match="no finished run"):
        select_top(settings, dashboard_runs["experiment"], "no_such_metric", 3)
