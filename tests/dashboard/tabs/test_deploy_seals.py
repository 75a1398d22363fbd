"""The Choose model tab's audit trail after a rotation of PIPELINE_API_TOKEN: records under a
former token declared by its fingerprint (PIPELINE_PREVIOUS_TOKENS) are "? other token", a record
made to name a token nobody declared is "✗ failed check"."""

from common import Settings
from jobs import SelectionStore, get_database
from jobs.seal import fingerprint
from runs.schemas import SelectionRecord
from tests.dashboard.conftest import open_page

TOKEN = "a-long-random-deployment-token-0123456789"
FORMER = "a-former-deployment-token-rotated-since-0123"


def test_a_declared_rotation_is_marked_apart_from_a_made_up_one(
    page_env, dashboard_runs, monkeypatch
):
    monkeypatch.setenv("PIPELINE_API_TOKEN", TOKEN)
    monkeypatch.setenv("PIPELINE_PREVIOUS_TOKENS", fingerprint(FORMER))
    db = get_database(Settings())
    for run, key in (("rotated", FORMER), ("rewritten", TOKEN), ("current", TOKEN)):
        SelectionStore(db, key=key).record(SelectionRecord(
            run_id=run, action="download", reason=run, model_uri="runs:/x/model",
            experiment_id="1"))  # fmt: skip
    made_up = {"reason": "other", "sealed_with": "0123456789ab"}
    db["selections"].update_many({"run_id": "rewritten"}, {"$set": made_up})
    at = open_page(dashboard_runs["pipeline"], "Choose model",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [error] = [e.value for e in at.error if "fail their seal's check" in e.value]
    assert "run rewritten: sealed under a key that is neither" in error
    assert "run rotated" not in error
    assert any("PIPELINE_PREVIOUS_TOKENS names by its fingerprint only" in i.value for i in at.info)
    trail = next(f.value for f in at.dataframe if "action" in f.value.columns)
    assert list(zip(trail["run_id"], trail["sealed"], strict=True)) == [
        ("current", "✓ intact"),
        ("rewritten", "✗ failed check"),
        ("rotated", "? other token"),
    ]
