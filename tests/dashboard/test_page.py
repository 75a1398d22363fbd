import json
import time
from collections import Counter

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from dashboard.page import TABS
from tests.dashboard.conftest import UNICODE_NAME, open_page, page_text


@pytest.mark.parametrize("role", ["sklearn", "failed", "child", "parent", "steps", "unicode"])
def test_runs_the_pipeline_did_not_create_render(page_env, dashboard_runs, role):
    at = open_page(dashboard_runs[role], "Metrics", experiment_id=dashboard_runs["experiment"])
    assert not at.exception
    assert at.title[0].value  # the run's name heads the page
    assert dashboard_runs[role] in page_text(at)


def test_unicode_names_are_shown_as_they_are(page_env, dashboard_runs):
    at = open_page(dashboard_runs["unicode"], "Metrics", experiment_id=dashboard_runs["experiment"])
    assert at.title[0].value == UNICODE_NAME
    assert "größe" in page_text(at)


@pytest.mark.parametrize("tab", list(TABS))
def test_every_tab_of_a_failed_run_explains_what_is_missing(page_env, dashboard_runs, tab):
    at = open_page(dashboard_runs["failed"], tab)
    assert not at.exception
    assert not at.error, [e.value for e in at.error]


def _make_experiment(client: MlflowClient, name: str, n_runs: int) -> str:
    """``n_runs`` filler runs, then one probe run (the newest, selected by default)."""
    exp = client.create_experiment(name)
    now = int(time.time() * 1000)
    for i in range(n_runs + 1):
        run = client.create_run(exp, run_name=f"r{i}", start_time=now + i)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, 0.5, now, s) for k in ("loss", "auc") for s in range(3)],
            params=[Param("model", "smallcnn"), Param("i", str(i))],
        )
        client.set_terminated(run.info.run_id)
    return exp


@pytest.fixture
def count_mlflow_calls(monkeypatch) -> Counter:
    """Counts every public ``MlflowClient`` method call made while the page renders."""
    calls: Counter = Counter()
    for name in dir(MlflowClient):
        attr = getattr(MlflowClient, name)
        if name.startswith("_") or not callable(attr) or isinstance(attr, type):
            continue

        def wrapped(*args, _name=name, _attr=attr, **kwargs):
            calls[_name] += 1
            return _attr(*args, **kwargs)

        monkeypatch.setattr(MlflowClient, name, wrapped)
    return calls


@pytest.fixture(scope="module")
def small_and_big(mlflow_server) -> tuple[str, str]:
    """Two experiments, of 3 and of 61 runs (read only: every tab's test views both)."""
    client, stamp = MlflowClient(mlflow_server), time.time_ns()
    return (
        _make_experiment(client, f"calls-small-{stamp}", 2),
        _make_experiment(client, f"calls-big-{stamp}", 60),
    )


@pytest.mark.parametrize("tab", ["Metrics", "Artifacts", "Compare", "Choose model"])
def test_mlflow_calls_per_view_do_not_grow_with_the_experiment(
    page_env, small_and_big, count_mlflow_calls, tab
):
    counts = []
    for exp in small_and_big:
        count_mlflow_calls.clear()
        at = open_page(None, tab, experiment_id=exp)
        assert not at.exception
        counts.append(sum(count_mlflow_calls.values()))
    assert counts[0] == counts[1], count_mlflow_calls
    assert counts[1] <= 12


@pytest.mark.slow
@pytest.mark.parametrize("tab", list(TABS))
def test_a_run_of_the_real_trainer_renders_every_tab(page_env, trained_run, tab):
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(trained_run.tracking_uri).get_run(trained_run.run_id)
    at = open_page(trained_run.run_id, tab, experiment_id=experiment.info.experiment_id)
    assert not at.exception
    assert not at.error, at.error[0].value
    if tab == "Metrics":
        summary = next(f.value for f in at.dataframe if "latest" in f.value.columns)
        assert summary.loc["val_auc", "values"] == 3  # one value per epoch
        counts = next(f.value for f in at.dataframe if "test" in f.value.columns)
        assert counts.loc["samples", "test"] == 36
        # The trainer's leakage check reaches the page through the typed dataset_stats.json.
        assert any("duplicate" in c.value for c in [*at.caption, *at.warning])


def test_the_uri_typed_in_the_sidebar_reaches_every_tab_and_the_download(
    page_env, mlflow_server, dashboard_runs, unreachable_uri, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", unreachable_uri)  # the process default is wrong
    at = open_page(dashboard_runs["pipeline"], "Choose model", tracking_uri=mlflow_server,
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.error, at.error[0].value
    at.button(key="download_model").click().run()
    assert not at.error, at.error[0].value
    assert (page_env / "artifacts" / dashboard_runs["pipeline"] / "model").is_dir()
    # The Evaluate button is not offered: the services read their own server, not this one.
    at.session_state["tab"] = "Evaluation"
    at.run()
    assert not [b for b in at.button if b.key == "job_evaluate"]
    assert any("reads runs from its own MLFLOW_TRACKING_URI" in c.value for c in at.caption)


def test_leakage_rows_list_the_duplicates_of_dataset_stats():
    from dashboard.provenance import leakage_rows

    stats = {
        "leakage": {
            "exact": {"train/test": {"count": 1, "examples": [{"a": "tr/1.png", "b": "te/9.png"}]}},
            "near": {"train/val": {"count": 0, "examples": []}},
        }
    }
    rows = leakage_rows(stats)
    assert rows.to_dict("records") == [
        {
            "splits": "train/test",
            "duplicates": "exact",
            "images": 1,
            "examples": "tr/1.png ≈ te/9.png",
        }
    ]
    assert leakage_rows({}).empty


def test_a_run_whose_trainer_died_says_so_at_the_top(page_env, mlflow_server, tmp_path):
    from trainer.mlflow_run import close_abandoned

    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"died-{time.time_ns()}")
    trainer = {"pipeline.trainer": "node-7:4242"}  # as the trainer tags its run
    run_id = client.create_run(exp, run_name="killed-9", tags=trainer).info.run_id
    close_abandoned({"run_id": run_id, "pid": 4242, "host": "node-7"}, None, mlflow_server,
                    tmp_path)  # fmt: skip
    at = open_page(run_id, "Metrics", experiment_id=exp)
    [warning] = [w.value for w in at.warning if w.value.startswith("Training did not finish")]
    assert "process 4242 on node-7" in warning and "marked KILLED" in warning


def test_a_training_run_says_it_may_have_died_and_how_to_continue(page_env, mlflow_server):
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"training-{time.time_ns()}")
    report = json.dumps({"at": "2026-01-01T00:00:00+00:00", "epoch": 3, "epochs": 40})
    tags = {"pipeline.stage": "training", "pipeline.progress": report}
    run_id = client.create_run(exp, run_name="epoch-3", tags=tags)
    at = open_page(run_id.info.run_id, "Metrics", experiment_id=exp)
    [note] = [i.value for i in at.info if i.value.startswith("Training is in progress")]
    assert "or its trainer died without a word" in note and "--resume auto" in note
    assert "(last report: epoch 3 of 40, " in note and " min ago)" in note


def test_the_last_report_names_epoch_member_and_age():
    from datetime import UTC, datetime

    from dashboard.page import last_report

    report = {"at": "2026-12-05T10:00:00+00:00", "epoch": 36, "epochs": 40, "member": 2,
              "members": 5}  # fmt: skip
    now = datetime(2026, 12, 5, 10, 23, tzinfo=UTC)
    tags = {"pipeline.progress": json.dumps(report)}
    assert last_report(tags, now) == " (last report: epoch 36 of 40 of member 2 of 5, 23 min ago)"
    assert last_report({}, now) == "" and last_report({"pipeline.progress": "{"}, now) == ""


def test_identical_images_under_two_classes_are_a_warning_of_the_dataset(page_env, mlflow_server):
    client = MlflowClient(mlflow_server)
    exp = client.create_experiment(f"conflicts-{time.time_ns()}")
    run_id = client.create_run(exp, run_name="conflicting").info.run_id
    conflict = {"files": ["train/a/1.png", "train/b/1.png"], "classes": ["a", "b"]}
    stats = {"class_names": ["a", "b"], "counts": {"train": {"a": 4, "b": 4, "total": 8}},
             "leakage": {"exact": {}, "near": {},
                         "label_conflicts": {"count": 4, "examples": [conflict]}}}  # fmt: skip
    client.log_dict(run_id, stats, "dataset_stats.json")
    at = open_page(run_id, "Metrics", experiment_id=exp)
    [warning] = [w.value for w in at.warning if w.value.startswith("Labels in conflict")]
    assert "4 image(s) appear under two or more classes" in warning
    assert "train/a/1.png (a) = train/b/1.png (b)" in warning
