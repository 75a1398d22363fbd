"""A run's own ``eval_*`` metrics, typed into MLflow, are not an evaluation of this pipeline:
the Evaluation tab shows them as the run's, without a date of evaluation, intervals or plot."""

import time

from mlflow.tracking import MlflowClient

from tests.dashboard.conftest import open_page, page_text


def test_metrics_a_run_logged_by_hand_are_not_shown_as_an_evaluation(page_env, mlflow_server):
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"by-hand-{time.time_ns()}")
    run_id = client.create_run(exp, run_name="typed-in").info.run_id
    client.log_metric(run_id, "eval_roc_auc", 0.97)
    client.set_terminated(run_id)
    at = open_page(run_id, "Evaluation", experiment_id=exp)
    assert not at.exception
    text = page_text(at)
    assert "Showing the evaluation made" not in text
    assert "Test-set metrics (95% confidence intervals)" not in text
    assert "Test metrics the run logged itself" in [s.value for s in at.subheader]
    assert any("not made by this pipeline's evaluator" in c.value for c in at.caption)
    [table] = [f.value for f in at.dataframe if "Metric" in f.value.columns]
    assert list(table.columns) == ["Metric", "Value", "MLflow key"]  # no interval it lacks
    assert list(table.set_index("Metric").loc["test AUC"]) == ["0.97", "eval_roc_auc"]
    assert not at.get("vega_lite_chart")  # no interval plot of one dot
    assert "No evaluation can be made for this run" in text  # it has no model
