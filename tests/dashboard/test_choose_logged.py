"""A run whose test figures were logged by hand, not by the evaluator, is not chosen as an
evaluated one: a figure typed into MLflow has no test images, intervals or predictions."""

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard.choose import choose_run
from runs import contract


def test_figures_a_run_logged_itself_do_not_make_it_evaluated(fresh_run, settings, store):
    client = MlflowClient(settings.mlflow_tracking_uri)
    client.log_metric(fresh_run, "eval_roc_auc_macro", 0.97)  # typed in, say from a notebook
    client.log_metric(fresh_run, "eval_accuracy", 0.95)
    assert not contract.is_evaluated(client.get_run(fresh_run).data.tags)
    with pytest.raises(InvalidInput, match=r"has not been evaluated.*--yes-unevaluated"):
        choose_run(fresh_run, "the notebook says 0.97", settings, store)
    assert store.recent() == []


def test_the_evaluator_s_tags_make_a_run_evaluated():
    assert contract.is_evaluated({contract.EVALUATED_TAG: "true"})
    assert contract.is_evaluated({contract.EVALUATION_PATH_TAG: "evaluation/abc-1"})
    assert not contract.is_evaluated({contract.EVALUATED_TAG: "false"})
