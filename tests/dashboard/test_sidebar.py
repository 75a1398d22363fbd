import time

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from tests.dashboard.conftest import open_page


def _run_options(at) -> list[str]:
    """The run picker's labels (name · status · [sort metric ·] start time)."""
    return list(at.selectbox(key="run_id").options)


@pytest.fixture(scope="module")
def big_experiment(mlflow_server) -> str:
    """An experiment of 30 small runs (created in bulk)."""
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"sidebar-big-{time.time_ns()}")
    now = int(time.time() * 1000)
    for i in range(30):
        run = client.create_run(exp, run_name=f"run-{i:02d}", start_time=now + i)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("val_auc", i / 30, now, 0)],
            params=[Param("i", str(i))],
        )
        client.set_terminated(run.info.run_id)
    return exp


def test_unreachable_tracking_server_is_a_message_not_a_traceback(
    page_env, unreachable_uri, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", unreachable_uri)
    at = open_page()
    assert not at.exception
    assert "unreachable" in at.error[0].value
    assert unreachable_uri in at.error[0].value
    assert not at.tabs


def test_a_uri_that_is_not_one_says_what_is_expected(page_env):
    at = open_page(tracking_uri="localhost 5000")
    assert not at.exception
    assert "is not a tracking URI" in at.error[0].value


def test_status_filter_keeps_only_failed_runs(page_env, dashboard_runs):
    at = open_page(run_status_filter=["FAILED"], experiment_id=dashboard_runs["experiment"])
    [label] = _run_options(at)
    assert label.startswith("crashed-run · failed")


def test_invalid_filter_expression_explains_the_syntax(page_env, dashboard_runs):
    at = open_page(run_filter="val_auc >", experiment_id=dashboard_runs["experiment"])
    assert not at.exception
    assert "example: metrics.val_auc > 0.8" in at.error[0].value


def test_sort_by_metric_orders_the_run_picker(page_env, big_experiment):
    at = open_page(experiment_id=big_experiment, run_sort="metrics.`val_auc`", run_desc=False)
    labels = _run_options(at)
    assert labels[0].startswith("run-00 · finished · 0 ·")
    assert labels[1].startswith("run-01 · finished · 0.03333 ·")


def test_pages_move_forward_and_back(page_env, big_experiment):
    at = open_page(experiment_id=big_experiment, run_page_size=25)
    first = _run_options(at)
    assert len(first) == 25
    at.button(key="page_next").click().run()
    second = _run_options(at)
    assert len(second) == 5 and not set(first) & set(second)
    assert at.button(key="page_next").disabled
    at.button(key="page_prev").click().run()
    assert _run_options(at) == first


def test_nested_run_is_marked_in_the_picker(page_env, dashboard_runs):
    at = open_page(experiment_id=dashboard_runs["experiment"])
    assert any(label.startswith("↳ child-trial") for label in _run_options(at))
