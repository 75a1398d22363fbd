"""The Choose model tab after an upgrade: records of a release before the model registry, and a
``run_id.txt`` that an earlier release's Download rewrote."""

import uuid

from common import Settings, utcnow
from dashboard.choose import choose_run
from dashboard.tabs.deploy import LEGACY_DOWNLOAD
from jobs import get_database
from tests.dashboard.conftest import open_page


def test_a_record_without_an_action_is_shown_as_the_download_that_chose_then(
    page_env, dashboard_runs
):
    old = {"_id": "old", "run_id": "r0", "model_uri": "runs:/r0/model", "experiment_id": "1"}
    get_database(Settings())["selections"].insert_one({**old, "selected_at": utcnow()})
    at = open_page(dashboard_runs["pipeline"], "Choose model",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    at.selectbox(key="trail_action").set_value("downloads").run()
    trail = next(f.value for f in at.dataframe if "action" in f.value.columns)
    assert list(zip(trail["run_id"], trail["action"], strict=True)) == [("r0", LEGACY_DOWNLOAD)]
    assert any("which was how a model was chosen then" in c.value for c in at.caption)


def test_a_run_id_file_naming_another_run_than_the_alias_is_warned_of(
    page_env, dashboard_runs, monkeypatch
):
    monkeypatch.setenv("MODEL_NAME", f"upgrade-{uuid.uuid4().hex[:8]}")  # its own versions
    settings = Settings()
    choose_run(dashboard_runs["pipeline"], "served", settings, allow_unevaluated=True)
    settings.run_id_file.write_text("0123456789abcdef\n")  # an earlier release's Download
    at = open_page(dashboard_runs["pipeline"], "Choose model",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [warning] = [w.value for w in at.warning if "names run 0123456789abcdef" in w.value]
    assert f"version 1 of run {dashboard_runs['pipeline']}" in warning
    assert "Choose the run that should be served" in warning
