"""The leaderboard's table (dashboard/board.py): what it says of its marks, and how it draws."""

import json

from tests.dashboard.conftest import open_page


def _open(runs):
    return open_page(runs["pipeline"], experiment_id=runs["experiment"])


def test_the_run_column_is_not_pinned_which_draws_it_faded(page_env, dashboard_runs):
    at = _open(dashboard_runs)
    config = json.loads(at.dataframe[0].proto.columns)
    assert "pinned" not in config["run"]


def test_the_meaning_of_the_marks_is_body_text_not_a_faint_caption(page_env, dashboard_runs):
    at = _open(dashboard_runs)
    assert any("best on this page" in m.value for m in at.markdown)
    assert not any("best on this page" in c.value for c in at.caption)


def test_the_note_under_the_table_says_what_the_row_marks_mean(page_env, dashboard_runs):
    at = _open(dashboard_runs)
    [note] = [m.value for m in at.markdown if "best on this page" in m.value]
    assert "▶ marks the open one" in note
    assert "servable ✓:" in note and "duration ≥:" in note
