"""What the dashboard names as a run's model: the one its training logged (``models:/<id>`` of
its param ``logged_model``), and what it says when that model is gone."""

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard.choose import choose_run
from runs import recorded_model
from tests.conftest import log_untrained_run


def test_choosing_a_run_whose_recorded_model_is_gone_names_it_and_says_how_to_go_on(
    settings, tiny_demo_data, store
):
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=93)
    client = MlflowClient(uri)
    model_id = recorded_model(run_id, client.get_run(run_id).data.params)[0]
    client.delete_logged_model(model_id)
    pattern = rf"model {model_id} its training logged .* is gone: .*--from-run {run_id}"
    with pytest.raises(InvalidInput, match=pattern):
        choose_run(run_id, "looks fine", settings, store, allow_unevaluated=True)
