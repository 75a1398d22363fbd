"""The evaluator and explainer score only the model trained in the run (``runs.digest``)."""

from unittest import mock

import pytest

import runs.packaging
from common import Conflict
from evaluator import evaluate_run
from explainer import explain_run
from tests.conftest import log_untrained_run
from tests.tampering import log_over, weights_only


def test_a_run_whose_model_was_logged_over_is_neither_evaluated_nor_explained(
    mlflow_server, demo_data
):
    """A run trained before the record of which model its training logged (from then on the
    trained model is loaded whatever was logged since: tests/runs/test_digest.py)."""
    with mock.patch.object(runs.packaging, "_record_digest", weights_only):
        run_id = log_untrained_run(mlflow_server, demo_data, seed=61)
    log_over(mlflow_server, run_id, seed=62)
    said = r"^the run's model is not the one trained in it: .*log that model in a new run"
    with pytest.raises(Conflict, match=said) as refused:
        evaluate_run(run_id, mlflow_server, data_dir=demo_data)
    assert refused.value.status_code == 409
    with pytest.raises(Conflict, match=said):
        explain_run(run_id, mlflow_server, data_dir=demo_data, n_samples=2)
