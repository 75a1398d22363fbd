import json
import uuid

import pytest
from mlflow import MlflowClient

from common import InvalidInput
from dashboard import download_top
from dashboard.ranking import top_runs
from jobs import SelectionStore, get_database
from tests.conftest import log_untrained_run


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


def test_top_k_refuses_to_rank_by_a_figure_of_the_out_of_distribution_check(mlflow_server):
    """Better neither way (the API's callers too, not only the tab's list): refused before any
    search, naming a quality figure to rank by."""
    with pytest.raises(InvalidInput, match=r"better neither way.*eval_roc_auc_macro"):
        top_runs(mlflow_server, "0", "eval_ood_rate", 3, False)


def test_top_k_refuses_to_rank_by_bookkeeping_as_the_leaderboard_stars_none(mlflow_server):
    with pytest.raises(InvalidInput, match="lr is bookkeeping or an interval bound, not a score"):
        top_runs(mlflow_server, "0", "lr", 3, False)


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


def test_the_leaderboard_marks_a_tta_evaluation_made_before_the_basis_tags(mlflow_server):
    """An evaluation by a release from before the basis tags (2026-12-05) has none: its
    metrics.json says it used test-time augmentation, which its tags cannot."""
    import functools

    from mlflow import MlflowClient

    from dashboard import data, leaderboard
    from dashboard.ranking import row_basis
    from dashboard.reads import RunQuery
    from runs import contract
    from tests.dashboard.conftest import old_evaluation

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"board-{uuid.uuid4().hex}")
    for name, tta, accuracy in [("old-tta", "horizontal", 0.9), ("plain", "none", 0.8),
                                ("plain-b", "none", 0.7)]:  # fmt: skip
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_param(run_id, "data_dir", "/srv/data/synth")
        client.log_param(run_id, "class_names", json.dumps(["a", "b"]))
        client.set_tag(run_id, contract.TEST_OVERLAP_TAG, '{"exact": 0, "near": 0, "groups": 0}')
        old_evaluation(mlflow_server, run_id, "/srv/data/synth", tta)
        client.log_metric(run_id, "eval_accuracy", accuracy)
        client.set_terminated(run_id)
    rows = data.runs_page(mlflow_server, RunQuery(experiment_id)).rows
    basis = functools.partial(row_basis, mlflow_server)
    table = leaderboard.table(rows, ["eval_accuracy"], basis=basis).set_index("run")
    assert "† tta 'horizontal'" in table.loc["old-tta", "eval_accuracy"]
    assert leaderboard.BEST not in table.loc["old-tta", "eval_accuracy"]
    assert leaderboard.BEST in table.loc["plain", "eval_accuracy"]
    by_tags = leaderboard.table(rows, ["eval_accuracy"]).set_index("run")  # what it showed
    assert leaderboard.BEST in by_tags.loc["old-tta", "eval_accuracy"]


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


def test_a_top_k_failing_midway_names_the_runs_it_downloaded_and_recorded(
    mlflow_server, tiny_demo_data, settings
):
    metric = f"rank_{uuid.uuid4().hex[:8]}"  # only these two runs have it
    first = log_untrained_run(mlflow_server, tiny_demo_data, seed=3)
    client = MlflowClient(mlflow_server)
    client.log_metric(first, metric, 0.9)
    experiment_id = client.get_run(first).info.experiment_id
    second = client.create_run(experiment_id).info.run_id  # finished without a model
    client.log_metric(second, metric, 0.8)
    client.set_terminated(second)
    store = SelectionStore(get_database(settings))
    with pytest.raises(InvalidInput) as err:
        download_top(settings, experiment_id, metric, 2, True, store, selected_by="tester")
    message = str(err.value)
    assert second in message.split(" (before it")[0]  # what failed comes first
    folder = settings.artifacts_dir / first
    assert (
        f"before it, 1 of the 2 runs were downloaded and recorded: run {first} (to {folder})"
        in message
    )
    assert [r["run_id"] for r in store.recent()] == [first]
    assert (settings.artifacts_dir / first / "model" / "MLmodel").is_file()


def test_the_test_n_of_an_evaluation_from_before_the_tags_is_read_from_its_metrics_json(
    mlflow_server,
):
    """Its figures are read from metrics.json already (``row_basis``): so is its count."""
    import functools

    from dashboard import data, leaderboard
    from dashboard.ranking import row_basis
    from dashboard.reads import RunQuery
    from tests.dashboard.conftest import old_evaluation

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"test-n-old-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id, run_name="old").info.run_id
    client.log_param(run_id, "data_dir", "/srv/data/synth")
    old_evaluation(mlflow_server, run_id, "/srv/data/synth")  # its metrics.json: 4 images
    client.set_terminated(run_id)
    rows = data.runs_page(mlflow_server, RunQuery(experiment_id)).rows
    basis = functools.partial(row_basis, mlflow_server)
    table = leaderboard.table(rows, ["eval_accuracy"], basis=basis)
    assert table.loc[run_id, leaderboard.TEST_N] == "4"
    assert leaderboard.table(rows, ["eval_accuracy"]).loc[run_id, leaderboard.TEST_N] == "–"


def test_the_test_n_of_an_evaluation_with_basis_tags_but_no_count_is_read_once(
    mlflow_server, monkeypatch
):
    """Published between the basis tags (2026-12-05) and the count's tag: its tags say what it
    was measured on but not on how many images, its metrics.json does. Read once per process,
    not at every rerun of the page; a ranking, which needs no count, reads none."""
    import functools

    from dashboard import data, handoff, leaderboard
    from dashboard.ranking import row_basis
    from dashboard.reads import RunQuery
    from runs import contract
    from tests.dashboard.conftest import old_evaluation

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"test-n-between-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id, run_name="between").info.run_id
    client.log_param(run_id, "data_dir", "/srv/data/synth")
    client.set_tag(run_id, contract.TEST_OVERLAP_TAG, '{"exact": 0, "near": 0, "groups": 0}')
    folder = old_evaluation(mlflow_server, run_id, "/srv/data/synth")  # metrics.json: 4 images
    for key, value in contract.evaluation_tags("none", True, "old-hash", folder).items():
        client.set_tag(run_id, key, value)  # the basis tags, without the count's
    client.set_terminated(run_id)
    reads = []
    read = handoff.read_metrics
    monkeypatch.setattr(handoff, "read_metrics", lambda *a: reads.append(a[1]) or read(*a))
    assert top_runs(mlflow_server, experiment_id, "eval_accuracy", 1, True).run_ids == [run_id]
    assert reads == []
    rows = data.runs_page(mlflow_server, RunQuery(experiment_id)).rows
    basis = functools.partial(row_basis, mlflow_server)
    for _ in range(2):  # the page, then a rerun of it
        assert leaderboard.table(rows, [], basis=basis).loc[run_id, leaderboard.TEST_N] == "4"
    assert reads == [run_id]
    assert leaderboard.table(rows, []).loc[run_id, leaderboard.TEST_N] == "–"  # its tags alone
