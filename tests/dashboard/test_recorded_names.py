"""What the dashboard names as a run's model: the one its training logged (``models:/<id>`` of
its param ``logged_model``), and what it says when that model is gone."""

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard import build_model_card
from dashboard.choose import choose_run
from dashboard.reads import load_run
from dashboard.tabs.artifacts_tab import model_caption
from runs import MODEL_RECORD_KEY, RECORDS, RECORDS_KEY, recorded_model
from tests.conftest import log_untrained_run
from tests.tampering import log_over

MODEL_ID = f"m-{'a' * 32}"


def test_the_model_card_names_the_model_its_training_logged(settings, tiny_demo_data):
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=91)
    log_over(uri, run_id, seed=92)
    run = load_run(uri, run_id)
    card = build_model_card(run)
    assert f"- Model URI: `models:/{recorded_model(run_id, run['params'])[0]}`" in card
    assert "runs:/" not in card


def test_the_artifacts_tab_names_the_recorded_model_as_the_one_its_training_logged():
    params = {RECORDS_KEY: RECORDS, MODEL_RECORD_KEY: f"{MODEL_ID} {'f' * 64}"}
    models = [{"name": "model", "model_uri": f"models:/m-{'b' * 32}"}]
    caption = model_caption("r1", params, models)
    assert f"Its training logged `models:/{MODEL_ID}`" in caption
    assert "`runs:/r1/model` loads the latest logged" in caption


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
