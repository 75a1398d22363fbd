"""The leaderboard's table (dashboard/board.py): what it says of its marks, and how it draws."""

import json
import uuid

from mlflow.tracking import MlflowClient

from dashboard.board import class_filters
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


def test_each_set_of_classes_gets_a_filter_that_keeps_its_runs_in_mlflow(mlflow_server):
    """The page said "e.g. params.class_names = '...'": the value had to be looked up (JSON)."""
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"class-sets-{uuid.uuid4().hex[:8]}")
    sets = {"two": '["malignant", "benign"]', "three": '["akiec", "bcc", "mel"]'}
    ids = {}
    for name, names in sets.items():
        run = client.create_run(experiment, run_name=name)
        client.log_param(run.info.run_id, "class_names", names)
        ids[name] = run.info.run_id
    rows = [{"params": {"class_names": names}} for names in sets.values()]
    filters = class_filters(rows)
    assert filters == [
        '`params.class_names = \'["akiec", "bcc", "mel"]\'` (1 run)',
        '`params.class_names = \'["malignant", "benign"]\'` (1 run)',
    ]
    for text, name in zip(filters, ("three", "two"), strict=True):
        found = client.search_runs([experiment], text.split("`")[1])
        assert [r.info.run_id for r in found] == [ids[name]]
