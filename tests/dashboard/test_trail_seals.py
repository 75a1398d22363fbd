"""The dashboard's audit trail (``dashboard.trail.trail_store``) checks records sealed before a
rotation under the former tokens its settings declare (``PIPELINE_PREVIOUS_TOKENS``)."""

from common import Settings
from dashboard.trail import trail_store
from jobs import SelectionStore, get_database
from jobs.seal import UNDECLARED_TOKEN
from runs.schemas import SelectionRecord

TOKEN = "a-long-random-deployment-token-0123456789"
FORMER = "a-former-deployment-token-rotated-since-0123"


def _settings(tmp_path, **values) -> Settings:
    return Settings(_env_file=None, store_dir=tmp_path / "store", mongo_uri=None,
                    pipeline_api_token=TOKEN, **values)  # fmt: skip


def _old_record(settings: Settings) -> str:
    store = SelectionStore(get_database(settings), key=FORMER)  # before the rotation
    record = SelectionRecord(run_id="r0", action="choose", model_uri="models:/m/1",
                             experiment_id="1", reason="before the rotation")  # fmt: skip
    return store.record(record)["selection_id"]


def test_the_trail_checks_records_under_a_former_token_its_settings_declare(tmp_path):
    settings = _settings(tmp_path, pipeline_previous_tokens=FORMER)
    _old_record(settings)
    store = trail_store(settings)
    assert store.problems(store.recent()) == {}


def test_the_trail_fails_records_under_a_former_token_its_settings_do_not_declare(tmp_path):
    settings = _settings(tmp_path)
    old = _old_record(settings)
    store = trail_store(settings)
    assert store.problems(store.recent()) == {old: UNDECLARED_TOKEN}
