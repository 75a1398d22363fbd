import time

from tests.dashboard.conftest import open_page


def test_metrics_with_intervals_plots_and_misclassified(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.exception
    table = at.dataframe[0].value.set_index("metric")
    low, value, high = table.loc["accuracy", ["ci_low", "value", "ci_high"]]
    assert low <= value <= high
    assert len(at.get("image")) >= 3 + 1  # three plots and misclassified samples
    assert "Most confidently misclassified" in [s.value for s in at.subheader]
    assert "recall_nevus" not in table.index
    assert at.expander[0].label.startswith("Per-class metrics")


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
    table = at.dataframe[0].value.set_index("metric")
    assert "accuracy" in table.index, f"after {time.monotonic() - start:.0f} s"
