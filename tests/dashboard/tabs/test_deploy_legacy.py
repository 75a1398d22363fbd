"""The Choose model tab's audit trail with records of a release before the model registry."""

from common import Settings
from dashboard.tabs.deploy import LEGACY_DOWNLOAD
from jobs import get_database
from jobs.store import utcnow
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
