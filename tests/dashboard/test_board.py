"""The leaderboard's table (dashboard/board.py): what it says of its marks, and how it draws."""

import json

from tests.dashboard.conftest import open_page


def _open(runs):
    return open_page(runs["pipeline"], experiment_id=runs["experiment"])


def test_the_run_column_is_not_pinned_which_draws_it_faded(page_env, dashboard_runs):
    at = _open(dashboard_runs)
    config = json.loads(at.dataframe[0].proto.columns)
    assert "pinned" not in config["run"]
