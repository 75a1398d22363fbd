import os

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard.reads import (
    RunQuery,
    child_runs,
    list_artifacts,
    list_experiments,
    metric_histories,
    read_artifact,
    search_runs,
)
from tests.leftovers import ended_pid, left_by


def test_pages_are_disjoint_and_cover_the_experiment(mlflow_server, dashboard_runs):
    exp = dashboard_runs["experiment"]
    seen, token = [], None
    while True:
        page = search_runs(mlflow_server, RunQuery(exp, page_size=3, page_token=token))
        assert len(page.rows) <= 3
        seen += [r["run_id"] for r in page.rows]
        token = page.next_token
        if token is None:
            break
    everything = search_runs(mlflow_server, RunQuery(exp, page_size=1000)).rows
    assert set(seen) == {r["run_id"] for r in everything}
    not_runs = ("experiment", "evaluation", "explanation")
    assert {v for k, v in dashboard_runs.items() if k not in not_runs} <= set(seen)
    assert len(seen) == len(set(seen))


def test_status_and_name_filters(mlflow_server, dashboard_runs):
    exp = dashboard_runs["experiment"]
    failed = search_runs(mlflow_server, RunQuery(exp, statuses=("FAILED",)))
    assert [r["run_id"] for r in failed.rows] == [dashboard_runs["failed"]]
    named = search_runs(mlflow_server, RunQuery(exp, name_contains="запуск"))
    assert [r["run_id"] for r in named.rows] == [dashboard_runs["unicode"]]


def test_sort_by_metric(mlflow_server, dashboard_runs):
    page = search_runs(
        mlflow_server,
        RunQuery(
            dashboard_runs["experiment"],
            filter_string="metrics.val_auc > 0",
            order_by="metrics.`val_auc` ASC",
        ),
    )
    values = [r["metrics"]["val_auc"] for r in page.rows]
    assert values == sorted(values) and len(values) >= 3
    assert values[0] == 0.7  # child-trial


def test_invalid_filter_is_a_clear_error(mlflow_server, dashboard_runs):
    with pytest.raises(InvalidInput, match=r"not valid .*example"):
        search_runs(
            mlflow_server, RunQuery(dashboard_runs["experiment"], filter_string="val_auc >")
        )


def test_nested_run_knows_its_parent(mlflow_server, dashboard_runs):
    page = search_runs(mlflow_server, RunQuery(dashboard_runs["experiment"], name_contains="child"))
    assert page.rows[0]["parent_run_id"] == dashboard_runs["parent"]


def test_child_runs_of_a_parent_are_searched(mlflow_server, dashboard_runs):
    kids = child_runs(mlflow_server, dashboard_runs["experiment"], dashboard_runs["parent"])
    assert [k["run_id"] for k in kids] == [dashboard_runs["child"]]
    assert child_runs(mlflow_server, dashboard_runs["experiment"], dashboard_runs["child"]) == []


def test_long_history_in_one_call(mlflow_server, dashboard_runs):
    hist = metric_histories(mlflow_server, (dashboard_runs["steps"],), ("train_loss",))
    assert len(hist) == 2000
    assert hist["step"].max() == 1999


def test_artifact_listing_is_recursive(mlflow_server, dashboard_runs):
    paths = {a["path"] for a in list_artifacts(mlflow_server, dashboard_runs["pipeline"])}
    evaluation, explanation = dashboard_runs["evaluation"], dashboard_runs["explanation"]
    assert {"evaluation", f"{evaluation}/misclassified", f"{explanation}/panels"} <= paths
    assert any(p.startswith(f"{evaluation}/misclassified/") and p.endswith(".png") for p in paths)


def test_head_of_an_artifact_is_a_prefix(mlflow_server, dashboard_runs):
    run_id, path = dashboard_runs["pipeline"], f"{dashboard_runs['evaluation']}/predictions.csv"
    whole = read_artifact(mlflow_server, run_id, path)
    head = read_artifact(mlflow_server, run_id, path, max_bytes=100)
    assert head == whole[:100] and len(whole) > 100


def test_a_read_removes_what_a_killed_dashboard_left_and_nothing_live(
    mlflow_server, dashboard_runs, tmp_path, monkeypatch
):
    """A dashboard killed while reading a misclassified image left that patient image in /tmp."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed = left_by(tmp_path, "dashboard-read-", ended_pid())
    live = left_by(tmp_path, "dashboard-read-", os.getpid())
    path = f"{dashboard_runs['evaluation']}/predictions.csv"
    assert read_artifact(mlflow_server, dashboard_runs["pipeline"], path)
    assert not killed.exists() and sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_experiment_with_the_newest_run_comes_first(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    busy = client.create_experiment("busy")
    client.create_run(busy)
    client.create_experiment("created-later-never-used")  # updated last, holds no run
    client.create_run(busy)  # does not move the experiment's last_update_time
    names = [e["name"] for e in list_experiments(uri)]
    assert names[0] == "busy"
    assert set(names) == {"busy", "created-later-never-used", "Default"}
