import time

import pandas as pd
from mlflow.tracking import MlflowClient

from tests.dashboard.charts import chart_of, charts
from tests.dashboard.conftest import open_page, page_text


def _metrics(at):
    """The overall metrics table (the first with a "Metric" column)."""
    return next(f.value for f in at.dataframe if "Metric" in f.value.columns).set_index("Metric")


def test_metrics_with_intervals_plots_and_misclassified(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.exception
    table = _metrics(at)
    row = table.loc["test accuracy"]  # named as the leaderboard names eval_accuracy
    assert row["MLflow key"] == "eval_accuracy"
    low, value, high = map(float, row[["95% CI low", "Value", "95% CI high"]])
    assert low <= value <= high
    assert len(at.get("image")) >= 3 + 1  # three plots and misclassified samples
    assert "Most confidently misclassified" in [s.value for s in at.subheader]
    assert "test recall (nevus)" not in table.index
    assert any(e.label.startswith("Per-class metrics") for e in at.expander)
    per_class = next(
        f.value for f in at.dataframe
        if "Metric" in f.value.columns and "test recall (nevus)" in set(f.value["Metric"])
    )  # fmt: skip
    assert per_class["Interval method"].notna().all()  # read from metrics.json's per_class
    recall = per_class.set_index("Metric").loc["test recall (nevus)"]
    assert (recall["Interval method"], recall["MLflow key"]) == ("Wilson", "eval_recall_nevus")


def test_raw_predictions_on_request(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Evaluation", eval_raw=True,
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert any("predicted_label" in f.value.columns for f in at.dataframe)


def test_unevaluated_run_says_how_to_evaluate(page_env, dashboard_runs):
    at = open_page(dashboard_runs["bare"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [info] = at.info
    assert "no evaluation yet" in info.value
    assert f"python -m evaluator --run-id {dashboard_runs['bare']}" in info.value


def test_evaluate_button_with_the_service_down_says_how_to_start_it(page_env, dashboard_runs):
    at = open_page(dashboard_runs["bare"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    at.button(key="job_evaluate").click().run()
    assert not at.exception
    assert "uvicorn evaluator.app:app" in at.error[0].value


def test_evaluate_button_runs_a_job_and_shows_the_result(
    page_env, dashboard_runs, evaluator_service, fresh_run, monkeypatch
):
    monkeypatch.setenv("EVALUATOR_URL", evaluator_service)
    monkeypatch.setenv("PIPELINE_API_TOKEN", "s3cret-test-token-0123456789abcdef")
    at = open_page(fresh_run, "Evaluation", experiment_id=dashboard_runs["experiment"])
    at.button(key="job_evaluate").click()
    start = time.monotonic()
    at.run(timeout=400)
    assert not at.exception
    assert not at.error, at.error[0].value
    # Success clears the caches and reruns: the page now shows the new evaluation.
    table = _metrics(at)
    assert "test accuracy" in table.index, f"after {time.monotonic() - start:.0f} s"
    assert at.button(key="job_evaluate").label == "Run again"
    assert any(s.value.startswith("The evaluation finished") for s in at.success)  # after rerun


def test_intervals_chart_is_zoomed_per_metric_and_says_which_way_is_better(
    page_env, dashboard_runs
):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    spec, rows = chart_of(at, "better")  # each direction on its own chart and axis
    scale = spec["layer"][1]["encoding"]["x"]["scale"]
    assert set(rows["better"]) == {"higher is better"} and "accuracy" in set(rows["metric"])
    assert scale["zero"] is False
    low, high = scale["domain"]
    assert low <= rows["low"].min() and rows["high"].max() <= high
    assert high - low < 1.1 * (rows["high"].max() - rows["low"].min()) + 0.02  # zoomed in
    titles = [s["layer"][0]["encoding"]["x"]["title"] for s in charts(at) if "layer" in s]
    assert "value and 95% interval (lower is better)" in titles


def test_an_evaluated_run_says_when_and_offers_to_run_again(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert at.button(key="job_evaluate").label == "Run again"
    assert any(c.value.startswith("Showing the evaluation made on 20") for c in at.caption)


def test_a_run_that_cannot_be_evaluated_gets_no_button(page_env, dashboard_runs):
    at = open_page(dashboard_runs["sklearn"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not [b for b in at.button if b.key == "job_evaluate"]
    assert any("no model of this pipeline" in c.value for c in at.caption)


def test_run_that_cannot_be_evaluated_says_why_and_not_to_press_evaluate(page_env, dashboard_runs):
    at = open_page(dashboard_runs["failed"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.exception
    text = page_text(at)
    assert "No evaluation can be made for this run" in text
    assert "press" not in text.lower()
    assert "python -m evaluator" not in text


def test_two_class_run_shows_test_figures_at_the_validation_threshold(page_env, threshold_run):
    at = open_page(threshold_run["run_id"], "Evaluation",
                   experiment_id=threshold_run["experiment"])  # fmt: skip
    assert not at.exception
    assert "At the decision threshold chosen on validation" in [s.value for s in at.subheader]
    table = next(f.value for f in at.dataframe if "Measure" in f.value.columns)
    assert set(table["Class"]) == {"melanoma", "nevus", "all images"}
    measures = {m.split(" ")[0] for m in table["Measure"]}
    assert measures == {"sensitivity", "specificity", "accuracy", "PPV", "NPV"}
    rows = pd.concat(f.value for f in at.dataframe if "MLflow key" in f.value.columns)
    at_threshold = rows[rows["MLflow key"].str.startswith("eval_thr_")]
    assert len(at_threshold) == 4 and set(at_threshold["Interval method"]) == {"Wilson"}
    low, value, high = table[["95% CI low", "Value", "95% CI high"]].astype(float).to_numpy().T
    assert (low <= value).all() and (value <= high).all()
    assert any("'melanoma' is decided when its probability is ≥" in m.value for m in at.markdown)
    decided = next(f.value for f in at.dataframe if "decided melanoma" in f.value.columns)
    assert list(decided.index) == ["true melanoma", "true nevus"]
    assert int(decided.to_numpy().sum()) == 8  # the tiny data's 4 test images per class
    text = page_text(at)
    assert "Confusion matrix (most probable class)" in text
    assert "predictions here are the most probable class" in text


def test_duplicates_across_splits_and_label_conflicts_are_warned_of_beside_the_figures(
    page_env, mlflow_server
):
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"leaky-{time.time_ns()}")
    run_id = client.create_run(exp, run_name="leaky").info.run_id
    conflict = {"files": ["train/a/1.png", "test/b/1.png"], "classes": ["a", "b"]}
    stats = {"class_names": ["a", "b"], "counts": {"test": {"a": 2, "b": 2, "total": 4}},
             "leakage": {"exact": {"train/test": {"count": 3, "examples": []}}, "near": {},
                         "label_conflicts": {"count": 1, "examples": [conflict]}}}  # fmt: skip
    client.log_dict(run_id, stats, "dataset_stats.json")
    client.log_metric(run_id, "eval_accuracy", 0.9)
    at = open_page(run_id, "Evaluation", experiment_id=exp)
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Possible leakage: 3 images") for w in warnings), warnings
    assert any(w.startswith("Labels in conflict: 1 image(s)") for w in warnings), warnings


def _alts(at) -> list[str]:
    return [img.alt for element in at.get("image") for img in element.proto.imgs]


def test_plots_have_text_alternatives_from_the_report(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    alts = _alts(at)
    assert any(
        a.startswith("Confusion matrix, rows true class, columns predicted: true ") for a in alts
    )
    assert any(a.startswith("ROC curves") and "keratosis" in a and "AUC" in a for a in alts)
    assert any(a.startswith("Calibration") and "expected calibration error" in a for a in alts)
    assert any(a.startswith("Misclassified test image ") and "taken for" in a for a in alts)


def test_intervals_chart_is_named_by_its_values(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    alts = [c.proto.alt for c in at.get("vega_lite_chart")]
    assert any(a.startswith("Values with 95% intervals: ") and "test accuracy" in a for a in alts)


def test_the_argmax_confusion_matrix_is_also_a_table_of_counts(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [matrix] = [f.value for f in at.dataframe if "predicted nevus" in f.value.columns]
    assert list(matrix.index) == ["true keratosis", "true melanoma", "true nevus"]
    assert list(matrix.columns) == ["predicted keratosis", "predicted melanoma", "predicted nevus"]
    assert matrix.to_numpy().sum() > 0


def test_intervals_charts_fill_the_width_of_the_page(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    specs = [s for s in charts(at) if "layer" in s]
    assert len(specs) == 2
    assert all(s["width"] == "container" for s in specs)
