"""The dashboard's audit trail (``dashboard.trail.trail_store``) checks records sealed before a
rotation under the former tokens its settings declare (``PIPELINE_PREVIOUS_TOKENS``), and says
in one sentence when its store cannot be opened."""

import pytest

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


def test_a_trail_whose_store_is_locked_says_so_in_one_sentence(tmp_path, monkeypatch):
    """Another process holding the embedded store's write lock past its wait gave the choose
    command a sqlite3 traceback, and the dashboard 'could not be shown (OperationalError)'."""
    import sqlite3

    from common import ServiceUnavailable
    from jobs.embedded import EmbeddedDatabase

    monkeypatch.setattr(EmbeddedDatabase.__init__, "__defaults__", ("mlpipeline", 0.2))
    settings = Settings(_env_file=None, store_dir=tmp_path / "store", mongo_uri=None)
    EmbeddedDatabase(settings.store_dir)  # the store exists; its selections table does not yet
    holder = sqlite3.connect(settings.store_dir / "mlpipeline.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write
    try:
        with pytest.raises(ServiceUnavailable, match=r"another process holds its write lock"):
            trail_store(settings)
    finally:
        holder.close()
