import json

import numpy as np

from common import metric_keys
from dashboard import leaderboard
from dashboard.leakage import LEAK
from dashboard.notes import notes as table_notes
from evaluator.artifacts import flat_metrics
from evaluator.metrics import compute_metrics
from evaluator.ood import ood_report
from runs import OODReference, contract


def _run(name: str, metrics: dict, parent: str | None = None, stage: str | None = None) -> dict:
    tags = {"pipeline.stage": stage} if stage else {}
    return {"run_id": name * 4, "run_name": name, "status": "FINISHED", "start_time": 1_000,
            "end_time": 159_000, "parent_run_id": parent, "params": {"model": "smallcnn"},
            "metrics": metrics, "tags": tags}  # fmt: skip


def test_a_value_is_shown_with_its_interval():
    metrics = {
        "eval_accuracy": 0.893,
        "eval_accuracy_ci_low": 0.834,
        "eval_accuracy_ci_high": 0.933,
    }
    assert leaderboard.format_value(metrics, "eval_accuracy") == "0.893 (0.834–0.933)"
    assert leaderboard.format_value({}, "eval_accuracy") == "–"


def test_best_is_the_highest_or_the_lowest_by_metric():
    assert leaderboard.best_index([0.7, 0.9, None], "val_auc") == {1}
    assert leaderboard.best_index([0.7, 0.9], "val_loss") == {0}
    assert leaderboard.best_index([0.02, 0.05], "eval_ece") == {0}
    assert leaderboard.best_index([0.5, 0.5], "val_auc") == set()  # nothing to tell apart
    assert leaderboard.best_index([1e-3, 1e-4], "lr") == set()  # not a score


def test_a_class_name_does_not_turn_a_metric_around():
    for metric in ("eval_sensitivity_deceased", "eval_thr_specificity_hair_loss", "eval_f1_error"):
        assert leaderboard.direction(metric) == "higher is better", metric
    lower = ("eval_ece", "ece", "member2_val_loss", "epoch_time", "explain_deletion_auc_shap")
    for metric in lower:
        assert leaderboard.direction(metric) == "lower is better", metric


def test_children_follow_their_parent_and_only_pipeline_runs_are_deployable():
    rows = [_run("kid", {}, parent="pop" * 4), _run("solo", {}), _run("pop", {}, stage="trained")]
    table = leaderboard.table(rows, [], selected="pop" * 4)
    assert list(table["run"]) == ["solo", "▶ pop", "↳ kid"]
    assert list(table["deployable"]) == [
        "✗ no model of this pipeline",
        "✓",
        "✗ no model of this pipeline",
    ]
    assert table.loc["solo" * 4, "duration"] == "2 min 38 s"


def test_a_trainer_run_without_its_model_says_it_is_training_or_stopped():
    running = {**_run("live", {}, stage="training"), "status": "RUNNING"}
    killed = {**_run("dead", {}, stage="training"), "status": "KILLED"}
    assert leaderboard.why_not_deployable(running).startswith("still training (or its trainer")
    assert leaderboard.why_not_deployable(killed).startswith("stopped before its model was logged")


def test_the_run_the_alias_names_is_marked_chosen():
    rows = [_run("a", {}, stage="trained"), _run("b", {}, stage="trained")]
    table = leaderboard.table(rows, [], chosen=("3", "bbbb"))
    assert list(table["deployable"]) == ["✓", "✓ chosen (version 3)"]


def test_the_best_cell_of_each_column_is_starred():
    rows = [_evaluated("a", 0.8), _evaluated("b", 0.9)]
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.8", "0.9 ★"]


def test_figures_a_run_logged_itself_are_shown_but_get_no_star():
    """eval_* metrics without the evaluator's tags: typed in, not an evaluation to rank."""
    rows = [_evaluated("a", 0.8), _evaluated("b", 0.85), _run("c", {"eval_accuracy": 0.9})]
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.8", "0.85 ★", "0.9"]


def test_epoch_time_and_a_chosen_threshold_are_bookkeeping_not_ranked():
    assert leaderboard.best_index([30.0, 12.0], "epoch_time") == set()
    assert leaderboard.best_index([0.3, 0.6], "eval_threshold") == set()


def test_the_trainers_training_and_validation_figures_get_no_star():
    trainer = ["train_loss", "val_auc", "best_val_auc", "member2_val_loss"]
    rows = [_run("a", dict.fromkeys(trainer, 0.5)), _run("b", dict.fromkeys(trainer, 0.9))]
    table = leaderboard.table(rows, trainer)
    assert not table[trainer].map(lambda cell: leaderboard.BEST in cell).any().any()


def _evaluated(name: str, accuracy: float, tta: str = "none", own: bool = True,
               data: str = "h1") -> dict:  # fmt: skip
    run = _run(name, {"eval_accuracy": accuracy})
    run["tags"][contract.EVALUATION_PATH_TAG] = f"evaluation/{name}-1"
    run["tags"].update(contract.evaluation_tags(tta, own, data, f"evaluation/{name}-1"))
    return run


def test_the_basis_of_another_evaluation_is_not_taken_for_the_current_ones():
    run = _evaluated("a", 0.9, tta="both")  # then an older evaluator published without tags
    run["tags"][contract.EVALUATION_PATH_TAG] = "evaluation/a-2"
    assert leaderboard.basis_of(run) == leaderboard.Basis(None, None, None)


def _old_report(data_dir: str):
    """``metrics.json`` as the evaluator before ``own_data`` wrote it (no such field)."""
    from runs import schemas

    return schemas.EvaluationReport(n_samples=4, class_names=["a", "b"], overall={},
                                    data_dir=data_dir, dataset_hash="h1", tta="none")  # fmt: skip


def test_an_old_evaluation_of_another_folder_than_the_runs_is_other_data():
    run = _run("a", {"eval_accuracy": 0.9})
    run["params"]["data_dir"] = "synth"  # relative to the trainer's DATA_DIR
    assert leaderboard.basis_of(run, _old_report("/srv/data/synth2")).caveat == "† other data"


def test_an_old_evaluation_of_the_runs_own_folder_stays_plain():
    run = _run("a", {"eval_accuracy": 0.9})
    run["params"]["data_dir"] = "synth"
    assert leaderboard.basis_of(run, _old_report("/srv/data/synth")).caveat is None


def test_a_tta_or_other_data_figure_is_marked_and_takes_no_star():
    rows = [_evaluated("a", 0.8), _evaluated("b", 0.7), _evaluated("c", 0.9, tta="both"),
            _evaluated("d", 0.95, own=False, data="h2")]  # fmt: skip
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.8 ★", "0.7", "0.9 † tta 'both'", "0.95 † other data"]


def test_evaluations_of_different_test_data_get_no_star_and_say_so():
    rows = [_evaluated("a", 0.8, data="h1"), _evaluated("b", 0.7, data="h2")]
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.8", "0.7"]
    bases = [leaderboard.basis_of(r) for r in rows]
    assert "evaluated on 2 different test sets" in table_notes(bases)[0]


def _started(name: str, start: int, parent: str | None = None) -> dict:
    return {**_run(name, {}, parent=parent), "start_time": start}


def test_children_on_a_newest_first_page_that_reaches_past_the_parent():
    parent = _started("pop", 100)
    rows = [_started("kid2", 300, "pop" * 4), _started("other", 200), _started("kid1", 150,
            "pop" * 4), parent, _started("old", 50)]  # fmt: skip
    kids = leaderboard.children_on_page(rows, complete=False, run=parent)
    assert [k["run_name"] for k in kids] == ["kid2", "kid1"]
    assert leaderboard.children_on_page(rows, complete=False, run=rows[1]) == []


def test_children_unknown_when_the_page_may_continue_with_them():
    parent = _started("pop", 100)
    # The page ends at the parent's start: a tied child may be on the next page.
    cut = [_started("kid", 300, "pop" * 4), parent]
    assert leaderboard.children_on_page(cut, complete=False, run=parent) is None
    assert leaderboard.children_on_page(cut, complete=True, run=parent) == [cut[0]]
    # The run is not on the page (another page or filter): a search must say.
    assert leaderboard.children_on_page(cut[:1], complete=True, run=parent) is None


def test_runs_on_different_classes_get_no_best_mark():
    three, two = _evaluated("a", 0.39), _evaluated("b", 0.5)
    three["params"]["class_names"] = '["keratosis", "melanoma", "nevus"]'
    two["params"]["class_names"] = '["melanoma", "nevus"]'
    mixed = leaderboard.table([three, two], ["eval_accuracy"])
    assert not mixed["eval_accuracy"].str.contains(leaderboard.BEST).any()
    two["params"]["class_names"] = three["params"]["class_names"]
    same = leaderboard.table([three, two], ["eval_accuracy"])
    assert same.loc["bbbb", "eval_accuracy"] == f"0.5 {leaderboard.BEST}"


def test_an_evaluation_tags_its_run_with_what_it_was_measured_on(fresh_run, mlflow_server):
    from dashboard import reads
    from evaluator import evaluate_run

    report = evaluate_run(fresh_run, mlflow_server, batch_size=32, tta="horizontal")
    tags = reads.load_run(mlflow_server, fresh_run)["tags"]
    assert tags["pipeline.evaluation.tta"] == "horizontal"
    assert tags["pipeline.evaluation.own_data"] == "true"
    assert tags["pipeline.evaluation.dataset_hash"] == report["dataset_hash"]
    assert tags["pipeline.evaluation.basis_of"] == report["artifact_path"]  # which they describe


def test_a_run_tested_on_its_own_training_images_takes_no_star_and_is_marked(leakage_tags):
    rows = [_evaluated("clean", 0.8), _evaluated("leaky", 0.95), _evaluated("worse", 0.7)]
    rows[1]["tags"].update(leakage_tags["test"])
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.8 ★", "0.95 ⚠ leakage", "0.7"]
    assert list(table["run"]) == ["clean", "leaky ⚠", "worse"]
    notes = table_notes([leaderboard.basis_of(r) for r in rows])
    assert any("test figures are optimistic" in n for n in notes)


def test_runs_sharing_the_same_copies_across_splits_rank_among_themselves(leakage_tags):
    """Runs of one data set that holds copies across its splits (BreastMNIST holds ~57 between
    train and test) are flattered alike: the best of them still gets its star."""
    rows = [_evaluated("first", 0.8), _evaluated("second", 0.9)]
    for row in rows:
        row["tags"].update(leakage_tags["test"])
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.8", "0.9 ★"]
    assert list(table["run"]) == ["first ⚠", "second ⚠"]  # still marked
    notes = table_notes([leaderboard.basis_of(r) for r in rows])
    assert any("optimistic, alike, so they rank among themselves" in n for n in notes)


def test_a_run_with_more_copies_of_its_test_images_than_the_others_does_not_rank(leakage_tags):
    rows = [_evaluated("alike", 0.8), _evaluated("more", 0.95), _evaluated("clean", 0.7),
            _evaluated("clean2", 0.75)]  # fmt: skip
    rows[0]["tags"].update(leakage_tags["test"])
    rows[1]["tags"][contract.TEST_OVERLAP_TAG] = json.dumps({"exact": 30, "near": 0, "groups": 0})
    # (ten times as many copies: another overlap)
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.8 ⚠ leakage", "0.95 ⚠ leakage", "0.7", "0.75 ★"]


def test_duplicates_between_train_and_val_only_do_not_mark_the_test_figures(leakage_tags):
    assert leakage_tags["train_val"]  # the trainer does warn about them
    rows = [_evaluated("clean", 0.8), _evaluated("trainval", 0.95)]
    rows[1]["tags"].update(leakage_tags["train_val"])
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.8", "0.95 ★"]
    assert list(table["run"]) == ["clean", "trainval"]


def test_a_run_whose_leakage_tag_cannot_be_read_is_marked_and_not_ranked():
    rows = [_evaluated("reworded", 0.95), _evaluated("a", 0.8), _evaluated("b", 0.7)]
    rows[0]["tags"][contract.LEAKAGE_TAG] = "possible leakage: 3 test images copied into train"
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.95 ⚠ leakage unknown", "0.8 ★", "0.7"]
    assert list(table["run"]) == ["reworded ⚠", "a", "b"]
    notes = table_notes([leaderboard.basis_of(r) for r in rows])
    assert any(n.startswith("⚠ leakage unknown (1 run(s))") for n in notes)


def test_a_run_without_the_figure_does_not_make_alike_runs_lose_their_star(leakage_tags):
    rows = [_evaluated("first", 0.9), _evaluated("second", 0.8), _run("running", {})]
    for row in rows:
        row["tags"].update(leakage_tags["test"])
    rows[2]["tags"] = {}  # a run still training: no figure, no tag yet
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.9 ★", "0.8", "–"]


def test_a_run_not_evaluated_does_not_change_the_notes_of_alike_runs(leakage_tags):
    rows = [_evaluated("first", 0.9), _evaluated("second", 0.8), _run("running", {})]
    for row in rows[:2]:
        row["tags"].update(leakage_tags["test"])
    notes = table_notes([leaderboard.basis_of(r) for r in rows])
    assert any("optimistic, alike, so they rank among themselves" in n for n in notes)
    assert not any("leakage (" in n for n in notes)


def test_alike_runs_of_one_data_set_are_not_leaked_beside_runs_of_another(leakage_tags):
    """BreastMNIST runs (alike copies) beside runs of a clean data set: two test sets, neither
    ranked against the other, and the BreastMNIST ones not called leaked."""
    rows = [_evaluated("breast", 0.9), _evaluated("breast2", 0.8),
            _evaluated("clean", 0.7, data="h2")]  # fmt: skip
    for row in rows[:2]:
        row["tags"].update(leakage_tags["test"])
    table = leaderboard.table(rows, ["eval_accuracy"])
    assert list(table["eval_accuracy"]) == ["0.9", "0.8", "0.7"]
    notes = table_notes([leaderboard.basis_of(r) for r in rows])
    assert "evaluated on 2 different test sets" in notes[0]
    assert not any("leakage (" in n for n in notes)


def test_the_overall_metrics_the_dashboard_names_are_ones_the_evaluator_reports():
    """A misspelt or dropped name would only hide a column or a registry tag, without a word."""
    from dashboard.handoff import SUMMARY_METRICS
    from evaluator.metrics import compute_metrics

    rng = np.random.default_rng(0)
    report = compute_metrics(np.arange(30) % 3, rng.dirichlet([1, 1, 1], 30), list("abc"))
    check = OODReference([np.eye(1)], [np.zeros((1, 1))], 1.0, 0.99, 78, 546)
    report["out_of_distribution"] = ood_report([rng.random(30) * 2], check, [])
    reported = set(flat_metrics(report))  # what it logs, of a model with the check
    named = {metric_keys.eval_key(name) for name in SUMMARY_METRICS}
    named |= {m for m in leaderboard.DEFAULT_METRICS if m.startswith(metric_keys.EVAL_PREFIX)}
    assert named and named - reported == set()


def test_a_runs_leakage_mark_is_the_same_in_every_column_even_one_others_lack(leakage_tags):
    """Two runs with the same copies beside a clean one do not rank: in every column, also in
    one the clean run has no figure of (an older evaluation's, or an eval_thr_* one)."""
    rows = [_evaluated("first", 0.9), _evaluated("second", 0.8), _evaluated("clean", 0.7)]
    for row, ece in zip(rows[:2], (0.05, 0.1), strict=True):
        row["tags"].update(leakage_tags["test"])
        row["metrics"]["eval_ece"] = ece
    table = leaderboard.table(rows, ["eval_accuracy", "eval_ece"])
    assert list(table["eval_accuracy"]) == ["0.9 ⚠ leakage", "0.8 ⚠ leakage", "0.7"]
    assert list(table["eval_ece"]) == ["0.05 ⚠ leakage", "0.1 ⚠ leakage", "–"]


def test_the_notes_count_every_run_marked_leaked_in_its_row(leakage_tags):
    """Leaked runs evaluated with tta, not evaluated yet, or plainly: each marked ⚠ after its
    name, each counted in the note; one evaluated on another data folder is neither (its
    figures are not of its own test split)."""
    rows = [_evaluated("clean", 0.8), _evaluated("plain", 0.9), _evaluated("tta", 0.9, "both"),
            _run("bare", {}), _evaluated("other", 0.9, own=False, data="h2")]  # fmt: skip
    for row in rows[1:]:
        row["tags"].update(leakage_tags["test"])
        row["tags"][contract.TEST_DATA_TAG] = "h1"  # its own test split's hash (not h2)
    table = leaderboard.table(rows, ["eval_accuracy"])
    marked = [name for name in table["run"] if name.endswith(LEAK)]
    assert marked == ["plain ⚠", "tta ⚠", "bare ⚠"]
    said = table_notes([leaderboard.basis_of(r) for r in rows])
    assert any(n.startswith(f"{LEAK} leakage (3 run(s))") for n in said), said


def test_a_run_whose_argmax_names_one_class_for_every_image_is_marked_and_not_starred():
    """On a test split of 8 nevus and 2 melanoma, calling every image nevus scores 0.8: its
    accuracy is a constant's, not a model's (the caveat choosing it lists)."""
    rows = [_evaluated("model", 0.7), _evaluated("constant", 0.8)]
    for row, (spec_m, spec_n) in zip(rows, ((0.75, 0.5), (1.0, 0.0)), strict=True):
        row["params"]["class_names"] = '["melanoma", "nevus"]'
        row["metrics"] |= {"eval_specificity_melanoma": spec_m, "eval_specificity_nevus": spec_n,
                           "eval_roc_auc_macro": 0.6 if spec_n else 0.9}  # fmt: skip
    table = leaderboard.table(rows, ["eval_accuracy", "eval_roc_auc_macro"])
    assert list(table["eval_accuracy"]) == ["0.7", "0.8 † constant 'nevus'"]
    assert list(table["eval_roc_auc_macro"]) == ["0.6", "0.9 ★"]  # of its probabilities
    said = table_notes([leaderboard.basis_of(r) for r in rows])
    assert any(n.startswith("† constant (1 run(s))") for n in said), said


def test_a_constant_argmax_is_marked_with_class_names_in_another_script():
    """良性 and 悪性 shared one key ("class"): one class's specificity was lost, and the mark
    could not be made. The evaluator's own figures of an argmax that always says 悪性."""
    names = ["良性", "悪性"]
    y = np.array([0, 0, 0, 1])
    probs = np.tile([0.2, 0.8], (4, 1))
    row = _evaluated("constant", 0.25)
    row["params"]["class_names"] = json.dumps(names)
    row["metrics"] |= flat_metrics(compute_metrics(y, probs, names))
    table = leaderboard.table([row], ["eval_accuracy"])
    [accuracy] = table["eval_accuracy"]
    assert accuracy.startswith("0.25") and accuracy.endswith("† constant '悪性'"), accuracy


def test_an_evaluation_records_how_many_test_images_the_leaderboard_shows(fresh_run, mlflow_server):
    """The count was in metrics.json only: a file per run, which the leaderboard never reads."""
    from dashboard import reads
    from evaluator import evaluate_run

    report = evaluate_run(fresh_run, mlflow_server, batch_size=32)
    run = reads.load_run(mlflow_server, fresh_run)
    assert report["n_samples"] == 12  # tiny_demo_data: 4 test images of each of 3 classes
    assert run["tags"][contract.EVALUATION_N_TAG] == "12"
    assert run["tags"][contract.EVALUATION_N_OF_TAG] == report["artifact_path"]
    assert leaderboard.table([run], ["eval_accuracy"]).loc[fresh_run, leaderboard.TEST_N] == "12"


def test_test_n_is_blank_when_not_known_never_another_evaluations_count():
    counted = _evaluated("counted", 0.8)
    counted["tags"].update(contract.evaluation_tags("none", True, "h1", "evaluation/counted-1", 40))
    older = _evaluated("older", 0.7)  # published before the evaluator recorded the count
    # counted before, then evaluated again by an evaluator without the count: the basis tags
    # move to the new folder, the count stays the earlier evaluation's
    moved = _evaluated("moved", 0.9)
    moved["tags"].update(contract.evaluation_tags("none", True, "h1", "evaluation/moved-1", 500))
    moved["tags"][contract.EVALUATION_PATH_TAG] = "evaluation/moved-2"
    moved["tags"].update(contract.evaluation_tags("none", True, "h1", "evaluation/moved-2"))
    running = _run("running", {})
    table = leaderboard.table([counted, older, moved, running], ["eval_accuracy"])
    assert list(table[leaderboard.TEST_N]) == ["40", "–", "–", "–"]


def test_an_old_evaluations_test_n_comes_from_its_metrics_json():
    run = _run("a", {"eval_accuracy": 0.9})
    run["params"]["data_dir"] = "synth"
    assert leaderboard.basis_of(run, _old_report("/srv/data/synth")).n_test == 4
    assert leaderboard.basis_of(run).n_test is None  # no tag: not known


def test_a_leaderboard_figure_is_rounded_as_mlflow_shows_it():
    """0.99125 is stored a hair below 0.99125: ``:.4g`` wrote 0.9912, the Metrics tab 0.9913."""
    metrics = {"eval_accuracy": 0.99125, "eval_accuracy_ci_low": 0.9625,
               "eval_accuracy_ci_high": 0.9985}  # fmt: skip
    assert leaderboard.format_value(metrics, "eval_accuracy") == "0.9913 (0.963–0.999)"
    assert leaderboard.format_value({"lr": 0.0005}, "lr") == "0.0005"
    assert leaderboard.format_value({"x": float("nan")}, "x") == "–"
