import time

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from dashboard.markup import plain
from runs import contract
from tests.dashboard.conftest import open_page, page_text


def _board(at):
    """The leaderboard: the first table, with a ``run`` column."""
    return at.dataframe[0].value


def _names(at) -> list[str]:
    return [n.removeprefix("▶ ") for n in _board(at)["run"]]


@pytest.fixture(scope="module")
def big_experiment(mlflow_server) -> str:
    """An experiment of 30 small runs (created in bulk), each tagged evaluated as the evaluator
    tags a run (figures a run logs itself are not ranked)."""
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"sidebar-big-{time.time_ns()}")
    now = int(time.time() * 1000)
    for i in range(30):
        run = client.create_run(exp, run_name=f"run-{i:02d}", start_time=now + i)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("val_auc", i / 30, now, 0), Metric("eval_accuracy", i / 30, now, 0)],
            params=[Param("i", str(i))],
            tags=[RunTag(contract.EVALUATED_TAG, "true")],
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
    assert plain(unreachable_uri) in at.error[0].value  # shown as text, not a link
    assert not at.tabs


def test_an_unreachable_server_is_named_without_its_credentials(
    page_env, unreachable_uri, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", unreachable_uri.replace("://", "://u:s3cretPW@"))
    at = open_page()
    assert "unreachable" in at.error[0].value and "s3cretPW" not in at.error[0].value


def test_the_uri_field_hides_the_configured_credentials_and_still_reaches_the_server(
    page_env, mlflow_server, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.replace("://", "://u:s3cretPW@"))
    at = open_page()
    assert at.sidebar.text_input(key="tracking_uri").value == mlflow_server.replace(
        "://", "://***@"
    )
    assert not at.exception and not at.error  # the shown text means the configured URI
    assert "s3cretPW" not in page_text(at)


def test_a_uri_that_is_not_one_says_what_is_expected(page_env):
    at = open_page(tracking_uri="localhost 5000")
    assert not at.exception
    assert "is not a tracking server's URI" in at.error[0].value


def test_leaderboard_comes_first_with_intervals_and_deployable_marks(page_env, dashboard_runs):
    # 200 a page: other tests add runs to the shared experiment (fresh_run), newest first
    at = open_page(dashboard_runs["pipeline"], experiment_id=dashboard_runs["experiment"],
                   run_page_size=200)  # fmt: skip
    assert at.header[0].value.startswith("Leaderboard")
    board = _board(at).set_index(_board(at)["run"].str.removeprefix("▶ "))
    evaluated = board.loc["smallcnn-evaluated"]
    assert evaluated["deployable"] == "✓"
    assert "(" in evaluated["eval_accuracy"] and "–" in evaluated["eval_accuracy"]
    assert board.loc["crashed-run", "deployable"].startswith("✗")
    assert board.loc["sklearn-autolog", "deployable"] == "✗ no model of this pipeline"
    assert board["run"].str.startswith("▶").sum() == 1  # the open run


def test_best_value_of_each_column_is_marked(page_env, big_experiment):
    at = open_page(experiment_id=big_experiment, leaderboard_columns=["eval_accuracy"])
    marked = _board(at)[_board(at)["eval_accuracy"].str.endswith("★")]
    assert list(marked["run"].str.removeprefix("▶ ")) == ["run-29"]


def test_status_filter_keeps_only_failed_runs(page_env, dashboard_runs):
    at = open_page(run_status_filter=["FAILED"], experiment_id=dashboard_runs["experiment"])
    assert _names(at) == ["crashed-run"]


def test_invalid_filter_expression_explains_the_syntax(page_env, dashboard_runs):
    at = open_page(run_filter="val_auc >", experiment_id=dashboard_runs["experiment"])
    assert not at.exception
    assert plain("example: metrics.val_auc > 0.8") in at.error[0].value  # Markdown, escaped


def test_sort_by_metric_happens_in_mlflow(page_env, big_experiment):
    at = open_page(experiment_id=big_experiment, run_sort="val_auc", run_desc=False)
    assert _names(at)[:2] == ["run-00", "run-01"]


def test_columns_are_chosen_by_the_person(page_env, big_experiment):
    at = open_page(experiment_id=big_experiment, leaderboard_columns=[])
    assert "val_auc" not in _board(at).columns
    at.multiselect(key="leaderboard_columns").set_value(["val_auc"]).run()
    assert "val_auc" in _board(at).columns


def test_pages_move_forward_and_back(page_env, big_experiment):
    at = open_page(experiment_id=big_experiment, run_page_size=25)
    first = _names(at)
    assert len(first) == 25
    at.button(key="page_next").click().run()
    second = _names(at)
    assert len(second) == 5 and not set(first) & set(second)
    assert at.button(key="page_next").disabled
    at.button(key="page_prev").click().run()
    assert _names(at) == first


def test_child_runs_sit_under_their_parent(page_env, dashboard_runs):
    at = open_page(experiment_id=dashboard_runs["experiment"], run_page_size=200)
    names = list(_board(at)["run"].str.removeprefix("▶ "))
    assert names[names.index("parent-sweep") + 1] == "↳ child-trial"


def test_a_parent_run_shows_its_children(page_env, dashboard_runs):
    at = open_page(dashboard_runs["parent"], "Metrics", experiment_id=dashboard_runs["experiment"])
    assert any(m.value.startswith("**Child runs (1)**: child-trial") for m in at.markdown)
    child = at.selectbox(key=f"open_child_{dashboard_runs['parent']}")
    child.set_value(dashboard_runs["child"]).run()
    assert at.title[0].value == "child-trial"
    assert any("child of parent-sweep" in c.value for c in at.caption)


@pytest.fixture
def mixed_experiment(mlflow_server) -> dict[str, str]:
    """An older pipeline run with a model, then a newer failed foreign run."""
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"default-run-{time.time_ns()}")
    now = int(time.time() * 1000)
    good = client.create_run(exp, run_name="trained", start_time=now,
                             tags={"pipeline.stage": "trained"})  # fmt: skip
    client.set_terminated(good.info.run_id)
    bad = client.create_run(exp, run_name="foreign-failed", start_time=now + 1000)
    client.log_batch(bad.info.run_id, tags=[RunTag("x", "y")])
    client.set_terminated(bad.info.run_id, status="FAILED")
    return {"experiment": exp, "good": good.info.run_id, "bad": bad.info.run_id}


def test_first_view_opens_the_newest_finished_run_with_a_model(page_env, mixed_experiment):
    at = open_page(experiment_id=mixed_experiment["experiment"])
    assert at.title[0].value == "trained"
    assert _names(at)[0] == "foreign-failed"  # newest first in the leaderboard all the same


def test_fixing_a_mistyped_uri_keeps_experiment_and_run(page_env, mlflow_server, dashboard_runs):
    at = open_page(dashboard_runs["child"], "Metrics", experiment_id=dashboard_runs["experiment"])
    at.text_input(key="tracking_uri").set_value("htp://typo").run()
    assert "is not a tracking server's URI" in at.error[0].value
    at.text_input(key="tracking_uri").set_value(mlflow_server).run()
    assert at.selectbox(key="experiment_id").value == dashboard_runs["experiment"]
    assert at.title[0].value == "child-trial"


@pytest.mark.parametrize("typed", ["sqlite:///{tmp}/probe.db", "file://{tmp}/mlruns", "{tmp}"])
def test_a_local_store_typed_in_is_refused_and_nothing_is_created(
    page_env, dashboard_runs, tmp_path, typed
):
    at = open_page(dashboard_runs["child"], "Metrics", experiment_id=dashboard_runs["experiment"])
    target = tmp_path / "typed"
    target.mkdir()
    at.text_input(key="tracking_uri").set_value(typed.format(tmp=target)).run()
    assert "is not a tracking server's URI: use http(s)://host:port" in at.error[0].value
    assert not at.exception
    assert list(target.iterdir()) == []  # no database, no mlruns folder


def test_runs_of_one_name_started_in_one_minute_are_told_apart(page_env, mlflow_server):
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"twins-{time.time_ns()}")
    now = int(time.time() * 1000)
    for i in range(2):
        run = client.create_run(exp, run_name="twin", start_time=now + i)
        client.set_terminated(run.info.run_id)
    at = open_page(experiment_id=exp)
    labels = at.selectbox(key="run_id").options
    assert len(labels) == 2 and len(set(labels)) == 2


def test_first_view_opens_the_run_the_alias_names(page_env, dashboard_runs, monkeypatch):
    from common import get_settings
    from dashboard.choose import choose_run

    monkeypatch.setenv("MODEL_NAME", f"alias-default-{time.time_ns()}")
    monkeypatch.setenv("RUN_ID_FILE", str(page_env / "run_id.txt"))
    get_settings.cache_clear()
    choose_run(dashboard_runs["pipeline"], "deployed", get_settings())  # older than "bare"
    at = open_page(experiment_id=dashboard_runs["experiment"])
    assert at.title[0].value == "smallcnn-evaluated"  # not the newest deployable run


def test_refresh_shows_a_run_logged_since_without_waiting_for_the_cache(page_env, mlflow_server):
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"refresh-{time.time_ns()}")
    client.set_terminated(client.create_run(exp, run_name="first").info.run_id)
    at = open_page(experiment_id=exp)
    client.set_terminated(client.create_run(exp, run_name="second").info.run_id)
    at.run()
    assert _names(at) == ["first"]  # cached for data.TTL seconds
    assert "may be up to 30 s old" in page_text(at)
    at.sidebar.button(key="refresh_data").click().run()
    assert _names(at) == ["second", "first"]


def test_comparing_with_the_top_of_the_leaderboard_takes_its_first_runs_in_its_order(
    page_env, big_experiment
):
    at = open_page(experiment_id=big_experiment, run_sort="val_auc", run_desc=False)
    opened = at.session_state["run_id"]
    at.sidebar.button(key="compare_top").click().run()
    assert not at.exception
    seen = at.session_state["seen_runs"]
    others = [n for n in _names(at) if n != seen[opened]]
    assert [seen[i] for i in at.session_state["compare_ids"]] == others[:3]


def test_a_run_deleted_while_open_is_said_gone_not_replaced_in_silence(page_env, mlflow_server):
    """Another user deleted the run one had open: the next click showed another run's figures
    on the same tab, without a word."""
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"deleted-{time.time_ns()}")
    ids = [client.create_run(exp, run_name=name).info.run_id for name in ("kept", "doomed")]
    for run_id in ids:
        client.set_terminated(run_id)
    at = open_page(ids[1], "Metrics", experiment_id=exp)
    assert at.title[0].value == "doomed" and not at.warning
    client.delete_run(ids[1])
    at.sidebar.button(key="refresh_data").click().run()
    assert at.title[0].value == "kept"
    [gone] = [w.value for w in at.warning if w.value.startswith("The run you had open is gone")]
    assert ids[1] in gone and "is deleted" in gone and "now shows kept" in gone
