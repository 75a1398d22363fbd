from dashboard import leaderboard
from dashboard.leakage import UNKNOWN, SplitOverlap
from dashboard.paired import Difference
from dashboard.tabs.compare import LEGEND, equivalent, params_table, row_label, style
from dashboard.tabs.compare_paired import verdict
from tests.dashboard.charts import charts
from tests.dashboard.conftest import open_page


def _open(runs, *others, **state):
    return open_page(runs["pipeline"], "Compare", experiment_id=runs["experiment"],
                     compare_ids=[runs[o] for o in others], **state)  # fmt: skip


def _frame(at, column_part: str, row: str):
    """The first table with a row ``row`` and a column containing ``column_part``."""
    for f in at.dataframe:
        if row in f.value.index and column_part in "".join(map(str, f.value.columns)):
            return f.value
    raise AssertionError(f"no table with a row {row!r}")


def test_validation_figures_side_by_side_are_named_so_and_not_starred(page_env, dashboard_runs):
    at = _open(dashboard_runs, "child")
    assert not at.exception
    metrics = _frame(at, "smallcnn-evaluated", "val_auc")
    row = metrics.loc["val_auc"]  # the MLflow key, beside its name
    # higher, on the split that chose the epoch: no ★
    assert list(row) == ["validation AUC ↑", "0.8", "0.7"]


def test_a_tta_evaluation_is_marked_and_its_verdict_is_not_like_for_like(
    page_env, dashboard_runs, fresh_run, mlflow_server
):
    from evaluator import evaluate_run

    evaluate_run(fresh_run, mlflow_server, batch_size=32, tta="both")  # the same test images
    at = _open({**dashboard_runs, "fresh": fresh_run}, "fresh")
    assert not at.exception
    metrics = _frame(at, "smallcnn-fresh", "eval_accuracy")
    row = metrics.loc["eval_accuracy"]
    assert row["metric"] == "test accuracy ↑"
    # (the tiny untrained model may also name one class for every image: "..., constant 'x'")
    assert "† tta 'both'" in row.iloc[2] and "★" not in row.iloc[1]
    table = next(t.value for t in at.table if "Verdict" in t.value.columns)
    assert table["Verdict"].str.startswith("not like for like: smallcnn-fresh").all()


def test_a_verdict_between_two_tta_evaluations_says_the_served_models_do_not_do_it():
    diff = Difference("accuracy", 0.2, 0.1, 0.3, only_this=0, only_other=20)
    assert verdict(diff, "a", "b", [None, "none"]) == "b is better"
    assert verdict(diff, "a", "b", ["both", "both"]) == (
        "b is better (both with tta 'both', which the served models do not do)"
    )


def test_two_runs_flattered_by_the_same_copies_keep_their_verdict_with_the_caveat():
    diff = Difference("accuracy", 0.2, 0.1, 0.3, only_this=0, only_other=20)
    same, clean = SplitOverlap(exact=57), SplitOverlap()
    assert verdict(diff, "a", "b", [None, None], (same, same)) == (
        "b is better; both runs' test figures are optimistic alike "
        "(test split overlaps train/val: 57 exact duplicate images)"
    )
    assert verdict(diff, "a", "b", [None, None], (clean, same)).startswith("not shown better")


def test_two_runs_whose_leakage_is_unknown_are_not_taken_as_alike():
    diff = Difference("accuracy", 0.2, 0.1, 0.3, only_this=0, only_other=20)
    unknown = UNKNOWN
    assert verdict(diff, "a", "b", [None, None], (unknown, unknown)).startswith("not shown better")


def test_params_that_differ_and_curves_in_panels(page_env, dashboard_runs):
    at = _open(dashboard_runs, "child")
    params = _frame(at, "child-trial", "data_dir")  # only the pipeline run has one
    assert "lr" in params.index  # 0.001 vs 0.01
    assert "model" in params.index  # smallcnn vs absent
    assert at.multiselect(key="compare_metrics").value == ["val_auc"]
    assert charts(at)


def test_confusion_matrices_and_roc_curves_next_to_each_other(page_env, dashboard_runs):
    at = _open(dashboard_runs, "bare", "sklearn")
    headings = [s.value for s in at.subheader]
    assert headings[headings.index("Confusion matrices") + 1] == "ROC"
    assert len(at.get("image")) == 2  # the evaluated run's two plots
    assert sum("not evaluated" in c.value for c in at.caption) == 4  # 2 runs × 2 plots


def test_equal_params_are_hidden_unless_asked(page_env, dashboard_runs):
    at = _open(dashboard_runs, "bare")
    assert not any(i == "model" for f in at.dataframe for i in f.value.index)
    at.toggle(key="compare_only_diff").set_value(False).run()
    assert "model" in _frame(at, "smallcnn-bare", "model").index


def test_the_same_path_written_two_ways_is_not_a_difference():
    assert equivalent("data", "/home/me/project/data")
    assert equivalent("data/", "/srv/data")
    assert not equivalent("data", "/srv/other")
    assert not equivalent("0.001", "0.01")
    runs = [
        {"run_name": "a", "run_id": "1" * 32, "params": {"data_dir": "data", "lr": "0.1"}},
        {"run_name": "b", "run_id": "2" * 32, "params": {"data_dir": "/x/data", "lr": "0.2"}},
    ]
    assert list(params_table(runs, only_different=True).index) == ["lr"]


def test_without_runs_to_compare_says_how_to_pick_them(page_env, dashboard_runs):
    at = _open(dashboard_runs)
    assert "Compare with" in at.info[0].value


def test_paired_differences_on_the_same_test_images(
    page_env, dashboard_runs, fresh_run, mlflow_server
):
    from evaluator import evaluate_run

    evaluate_run(fresh_run, mlflow_server, batch_size=32)  # the same tiny test split
    at = open_page(dashboard_runs["pipeline"], "Compare",
                   experiment_id=dashboard_runs["experiment"],
                   compare_ids=[fresh_run, dashboard_runs["bare"]])  # fmt: skip
    assert not at.exception
    assert "Is the difference real?" in [s.value for s in at.subheader]
    table = next(t.value for t in at.table if "Verdict" in t.value.columns)
    assert table["Run"].str.endswith(f"({fresh_run[:6]})").all()
    assert list(table["Metric"]) == [
        "test AUC (macro)",
        "test accuracy (most probable class)",
    ]
    notes = [i.value for i in at.info]
    assert any(dashboard_runs["bare"][:6] in n and "no evaluation" in n for n in notes)


def test_a_run_tested_on_its_training_images_is_not_called_better():
    diff = Difference("accuracy", 0.2, 0.1, 0.3, only_this=0, only_other=20)
    leaked, clean = SplitOverlap(exact=3), SplitOverlap()
    why = "test split overlaps train/val: 3 exact duplicate images"
    assert verdict(diff, "a", "b", [None, None], (clean, leaked)) == (
        f"not shown better: b scores higher, but its test figures are optimistic ({why})"
    )
    assert verdict(diff, "a", "b", [None, None], (leaked, clean)) == (
        f"b is better; a's test figures are optimistic ({why})"
    )


def test_the_paired_verdict_of_a_leaked_run_says_its_figures_are_optimistic(
    page_env, dashboard_runs, fresh_run, mlflow_server, leakage_tags
):
    from mlflow import MlflowClient

    from evaluator import evaluate_run

    for key, value in leakage_tags["test"].items():
        MlflowClient(mlflow_server).set_tag(fresh_run, key, value)
    evaluate_run(fresh_run, mlflow_server, batch_size=32)  # the same test images
    at = _open({**dashboard_runs, "fresh": fresh_run}, "fresh")
    assert not at.exception
    table = next(t.value for t in at.table if "Verdict" in t.value.columns)
    assert table["Verdict"].str.contains("smallcnn-fresh.* test figures are optimistic").all()
    assert not table["Verdict"].str.contains("smallcnn-fresh.* is better").any()


def test_compared_plots_and_curves_have_text_alternatives(page_env, dashboard_runs):
    at = _open(dashboard_runs, "child")
    alts = [img.alt for element in at.get("image") for img in element.proto.imgs]
    assert any(a.startswith("smallcnn") and "Confusion matrix, rows true class" in a for a in alts)
    assert any("ROC curves" in a for a in alts)
    assert all(c.proto.alt.startswith("Metric history") for c in at.get("vega_lite_chart"))


def test_the_better_value_is_bold_and_no_cell_gets_a_colour_of_its_own():
    assert style(f"0.91 {leaderboard.BEST}") == "font-weight: 700"
    assert "color" not in style(f"0.91 {leaderboard.CAVEAT} tested with TTA")


def test_a_rounded_parameter_reads_as_everywhere_else_and_is_named():
    runs = [
        {"run_name": "a", "run_id": "1" * 32, "params": {"threshold": "0.24369", "lr": "0.001"}},
        {"run_name": "b", "run_id": "2" * 32, "params": {"threshold": "0.3", "lr": "1e-2"}},
    ]
    table = params_table(runs, only_different=True)
    assert table.loc["threshold"].iloc[1:].tolist() == ["0.2437", "0.3"]  # not 0.24369
    assert table.loc["lr"].tolist() == ["learning rate", "0.001", "1e-2"]  # settings as typed


def test_a_metrics_name_fits_its_column_and_says_which_way_is_better():
    assert row_label("best_val_auc") == "best validation AUC ↑"  # was "… (higher is better)"
    assert row_label("eval_ece") == "test calibration error (ECE) ↓"
    assert row_label("val_custom") == "val_custom (validation) ↑"
    assert "↑ higher is better" in LEGEND and "↓ lower is better" in LEGEND
