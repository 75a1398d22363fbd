import json
import os
import uuid

import pytest

from common import InvalidInput, NotFound, ServiceUnavailable
from dashboard import download_model, download_run, download_top
from dashboard.choose import choose_run
from dashboard.selection import DOWNLOAD_JSON, top_runs
from jobs import SelectionStore, get_database


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
    assert (found["run_id"], found["model_uri"]) == (run_id, f"runs:/{run_id}/model")
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
    """MLflow's runs:/ repository reports any failed download (a full disk) as a missing model:
    the run has one, so the download failed here (tests/runs: the same under a real full disk)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    download = mlflow.artifacts.download_artifacts

    def swallowed(**kwargs):
        if not str(kwargs.get("artifact_uri")).endswith("/model"):  # the run's other files
            return download(**kwargs)
        raise MlflowException(
            "Failed to download artifacts from path 'model', please ensure that the path is "
            "correct.", error_code=RESOURCE_DOES_NOT_EXIST,
        )  # fmt: skip

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", swallowed)
    run_id = dashboard_runs["pipeline"]
    with pytest.raises(ServiceUnavailable, match=rf"runs:/{run_id}/model could not be downloaded"):
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
    assert record["model_uri"] == f"runs:/{run_id}/model" and record["version"] is None
    assert record["metrics"]["best_val_auc"] == pytest.approx(0.8)
    assert record["artifacts_path"] == str(got.artifacts_path.resolve())


def test_top_k_downloads_the_best_runs_and_leaves_run_id_file_alone(
    dashboard_runs, settings, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run_id.txt").write_text("chosen-before\n")
    store = SelectionStore(get_database(settings))
    got, ranked = download_top(settings, dashboard_runs["experiment"], "val_auc", 2, True, store)
    assert (ranked.other_data, ranked.leaked) == (0, 0)  # a validation figure: none left out
    # child-trial has val_auc 0.7, every pipeline run 0.8: the best two are pipeline runs.
    ids = {d.run_id for d in got}
    assert len(ids) == 2 and dashboard_runs["child"] not in ids
    assert all((settings.artifacts_dir / i / "model" / "MLmodel").exists() for i in ids)
    assert (tmp_path / "run_id.txt").read_text() == "chosen-before\n"
    assert [r["action"] for r in store.recent()] == ["download", "download"]


def test_top_k_with_a_metric_no_run_has_says_so(dashboard_runs, settings):
    with pytest.raises(InvalidInput, match="no finished run"):
        download_top(settings, dashboard_runs["experiment"], "no_such_metric", 3)


def _ranked_run(client, experiment_id: str, classes: list[str], auc: float) -> str:
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "class_names", json.dumps(classes))
    client.log_metric(run.info.run_id, "best_val_auc", auc)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_top_k_by_a_test_figure_leaves_out_tta_and_other_data_evaluations(mlflow_server):
    from mlflow import MlflowClient

    from runs import contract

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"top-k-{uuid.uuid4().hex}")
    ranked = {}
    for name, accuracy, tta, own in [("plain-a", 0.7, "none", True), ("plain-b", 0.8, "none", True),
                                     ("tta", 0.95, "both", True), ("other", 0.9, "none", False),
                                     ("untagged", 0.75, None, None)]:  # fmt: skip
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_metric(run_id, "eval_accuracy", accuracy)
        if tta is not None:
            folder = f"evaluation/{name}-1"
            client.set_tag(run_id, contract.EVALUATION_PATH_TAG, folder)
            for key, value in contract.evaluation_tags(tta, own, "h1", folder).items():
                client.set_tag(run_id, key, value)
        client.set_terminated(run_id)
        ranked[name] = run_id
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert got.run_ids == [ranked["plain-b"], ranked["untagged"], ranked["plain-a"]]


def test_top_k_leaves_out_an_old_evaluation_of_another_folder_than_the_runs(mlflow_server):
    from mlflow import MlflowClient

    from tests.dashboard.conftest import old_evaluation

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"top-k-{uuid.uuid4().hex}")
    ranked = {}
    for name, folder in [("own", "/srv/data/synth"), ("other", "/srv/data/synth2")]:
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_param(run_id, "data_dir", "/srv/data/synth")
        old_evaluation(mlflow_server, run_id, folder)  # before own_data and the basis tags
        client.set_terminated(run_id)
        ranked[name] = run_id
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert got.run_ids == [ranked["own"]]


def _evaluated_on(client, run_id: str, data: str) -> None:
    """Tag ``run_id`` as evaluated (plainly, on its own data folder) on test data ``data``."""
    from runs import contract

    folder = f"evaluation/{run_id}-1"
    client.set_tag(run_id, contract.EVALUATION_PATH_TAG, folder)
    for key, value in contract.evaluation_tags("none", True, data, folder).items():
        client.set_tag(run_id, key, value)


def test_top_k_by_a_test_figure_ranks_within_the_best_runs_test_data(mlflow_server):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"top-k-{uuid.uuid4().hex}")
    ranked = {}
    for name, accuracy, data in [("a", 0.7, "h1"), ("b", 0.8, "h2"), ("c", 0.9, "h1"),
                                 ("untagged", 0.75, None)]:  # fmt: skip
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_metric(run_id, "eval_accuracy", accuracy)
        if data is not None:
            _evaluated_on(client, run_id, data)
        client.set_terminated(run_id)
        ranked[name] = run_id
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert got.run_ids == [ranked["c"], ranked["untagged"], ranked["a"]]
    assert got.other_data == 1  # b: said to be left out


@pytest.mark.parametrize("classes", [["benign", "malignant"], ["Crohn's", "normal"]])
def test_top_k_ranks_only_runs_on_the_classes_asked_for(mlflow_server, classes):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"top-k-{uuid.uuid4().hex}")
    ours = [_ranked_run(client, experiment_id, classes, auc) for auc in (0.7, 0.8)]
    _ranked_run(client, experiment_id, [*classes, "third"], 0.95)  # better, other classes
    lookalike = [c.replace("'", "_") for c in classes]  # what LIKE's wildcard also matches
    if lookalike != classes:
        _ranked_run(client, experiment_id, lookalike, 0.9)
    got = top_runs(mlflow_server, experiment_id, "best_val_auc", 3, True, json.dumps(classes))
    assert got.run_ids == ours[::-1]


def _evaluated_runs(mlflow_server: str, runs: list[tuple]) -> tuple[str, dict[str, str]]:
    """A new experiment of finished runs, each ``(name, eval_accuracy, tags[, test data])``
    evaluated without tta on its own data (``h1`` unless given): its id and the run ids."""
    from mlflow import MlflowClient

    from runs import contract

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"top-k-{uuid.uuid4().hex}")
    ranked = {}
    for name, accuracy, tags, *data in runs:
        run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        client.log_metric(run_id, "eval_accuracy", accuracy)
        folder = f"evaluation/{name}-1"
        client.set_tag(run_id, contract.EVALUATION_PATH_TAG, folder)
        for key, value in contract.evaluation_tags("none", True, *data or ["h1"], folder).items():
            client.set_tag(run_id, key, value)
        client.set_terminated(run_id)
        ranked[name] = run_id
    return experiment_id, ranked


def test_top_k_by_a_test_figure_leaves_out_runs_tested_on_their_training_images(
    mlflow_server, leakage_tags
):
    experiment_id, ranked = _evaluated_runs(
        mlflow_server,
        [("leaky", 0.99, leakage_tags["test"]), ("a", 0.7, {}),
         ("b", 0.8, leakage_tags["train_val"])],
    )  # fmt: skip
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert got.run_ids == [ranked["b"], ranked["a"]]
    assert (got.leaked, got.other_data) == (1, 0)  # said to be left out


def test_top_k_ranks_runs_that_share_the_same_copies_across_splits(mlflow_server, leakage_tags):
    """All runs of one data set with copies across its splits (BreastMNIST): none left out."""
    runs = [("a", 0.7, leakage_tags["test"]), ("b", 0.8, leakage_tags["test"])]
    experiment_id, ranked = _evaluated_runs(mlflow_server, runs)
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert got.run_ids == [ranked["b"], ranked["a"]] and got.leaked == 0


def test_top_k_judges_alike_copies_within_the_test_data_of_the_runs(mlflow_server, leakage_tags):
    """BreastMNIST runs (alike copies) beside a clean data set's: ranked among their own kind,
    the other data set's run left out as other data, none as leaked."""
    runs = [("a", 0.7, leakage_tags["test"]), ("b", 0.9, leakage_tags["test"]),
            ("clean", 0.8, {}, "h2")]  # fmt: skip
    experiment_id, ranked = _evaluated_runs(mlflow_server, runs)
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert got.run_ids == [ranked["b"], ranked["a"]]
    assert (got.leaked, got.other_data) == (0, 1)


def test_top_k_does_not_rank_a_leaked_run_alone_on_its_test_data(mlflow_server, leakage_tags):
    """Its inflated figure picked the test data to rank within: the clean runs were left out
    as other data and the leaked one downloaded as the best, with no word of leakage."""
    runs = [("leaky", 0.99, leakage_tags["test"], "h1"), ("a", 0.8, {}, "h2"),
            ("b", 0.7, {}, "h2")]  # fmt: skip
    experiment_id, ranked = _evaluated_runs(mlflow_server, runs)
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert got.run_ids == [ranked["a"], ranked["b"]]
    assert (got.leaked, got.other_data) == (1, 0)


def test_top_k_counts_runs_of_unknown_leakage_apart_from_leaked_ones(mlflow_server, leakage_tags):
    """A run whose trainer did not check its test split is not said to share images: it is
    counted as unknown, the leaked one as leaked."""
    from runs import contract

    unchecked = {contract.TEST_OVERLAP_TAG: json.dumps({"audited": False})}
    runs = [("leaky", 0.99, leakage_tags["test"]), ("unchecked", 0.95, unchecked),
            ("a", 0.7, {})]  # fmt: skip
    experiment_id, ranked = _evaluated_runs(mlflow_server, runs)
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert got.run_ids == [ranked["a"]]
    assert (got.leaked, got.unknown, got.other_data) == (1, 1, 0)


def test_top_k_by_accuracy_leaves_out_a_run_whose_argmax_names_one_class(mlflow_server):
    """On imbalanced data a constant's accuracy (the class's share) can top a real model's."""
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"top-k-{uuid.uuid4().hex}")
    ranked = {}
    for name, accuracy, specificities in [("real", 0.8, (0.7, 0.9)), ("constant", 0.85, (0, 1))]:
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_param(run_id, "class_names", json.dumps(["a", "b"]))
        for key, value in [("eval_accuracy", accuracy), ("eval_roc_auc_macro", accuracy),
                           ("eval_specificity_a", specificities[0]),
                           ("eval_specificity_b", specificities[1])]:  # fmt: skip
            client.log_metric(run_id, key, value)
        client.set_terminated(run_id)
        ranked[name] = run_id
    by_accuracy = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert (by_accuracy.run_ids, by_accuracy.constant) == ([ranked["real"]], 1)
    by_auc = top_runs(mlflow_server, experiment_id, "eval_roc_auc_macro", 3, True)
    assert by_auc.run_ids == [ranked["constant"], ranked["real"]]  # its probabilities rank


def test_a_constant_run_does_not_pick_the_test_data_a_top_k_by_accuracy_ranks_on(mlflow_server):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"top-k-{uuid.uuid4().hex}")
    ranked = {}
    for name, accuracy, data, specificities in [("constant", 0.9, "hA", (0, 1)),
                                                ("real", 0.8, "hB", (0.7, 0.9))]:  # fmt: skip
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_param(run_id, "class_names", json.dumps(["a", "b"]))
        for key, value in [("eval_accuracy", accuracy), ("eval_specificity_a", specificities[0]),
                           ("eval_specificity_b", specificities[1])]:  # fmt: skip
            client.log_metric(run_id, key, value)
        _evaluated_on(client, run_id, data)
        client.set_terminated(run_id)
        ranked[name] = run_id
    got = top_runs(mlflow_server, experiment_id, "eval_accuracy", 3, True)
    assert (got.run_ids, got.constant, got.other_data) == ([ranked["real"]], 1, 0)
