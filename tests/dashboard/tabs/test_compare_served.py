"""Compare read as a clinician choosing between two-class models: the served decisions, each run
at its own threshold, paired as sensitivity and specificity; why such rows are missing; readable
verdicts; and the next step where a run has no evaluation yet.

Real runs on the real MLflow server, evaluated by the real evaluator, in an experiment of their
own (the shared one's runs would push them off the sidebar's page)."""

import shutil

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from common import get_settings
from dashboard.commands import cli_command
from dashboard.paired_decision import paired_interval
from tests.dashboard.conftest import _pipeline_run, open_page

EXPERIMENT = "dashboard-compare-served"
POSITIVE = "melanoma"


def _point(positive: str, threshold: float) -> dict:
    """An ``operating_point.json`` as the trainer writes it."""
    return {"positive_class": positive, "threshold": threshold, "target_sensitivity": 0.9,
            "val_sensitivity": 0.9, "val_specificity": 0.5, "chosen_on": "val"}  # fmt: skip


@pytest.fixture(scope="module")
def served_runs(mlflow_server, tiny_demo_data, tmp_path_factory) -> dict[str, str]:
    """Two-class runs (melanoma, nevus; 4 test images each) by name, and ``experiment``:
    ``low`` decides melanoma for every image (threshold 0), ``high`` for none (threshold 1),
    ``nevus`` takes nevus as its positive class, ``argmax`` has no threshold (all evaluated),
    ``bare`` is not evaluated."""
    from evaluator import evaluate_run

    data = tmp_path_factory.mktemp("served") / "data"
    for split in ("train", "test"):
        for cls in (POSITIVE, "nevus"):
            shutil.copytree(tiny_demo_data / split / cls, data / split / cls)
    mlflow.set_tracking_uri(mlflow_server)
    client = MlflowClient(mlflow_server)
    runs = {"experiment": mlflow.set_experiment(EXPERIMENT).experiment_id}
    points = {"low": _point(POSITIVE, 0.0), "high": _point(POSITIVE, 1.0),
              "nevus": _point("nevus", 0.5), "argmax": None, "bare": None}  # fmt: skip
    for name, point in points.items():
        run_id = _pipeline_run(mlflow_server, data, f"served-{name}")
        if point is not None:  # as the trainer records its choice
            client.log_dict(run_id, point, "operating_point.json")
            client.log_param(run_id, "decision_threshold", point["threshold"])
            client.log_param(run_id, "positive_class", point["positive_class"])
        if name != "bare":
            evaluate_run(run_id, mlflow_server, batch_size=32)
        runs[name] = run_id
    return runs


def _open(runs: dict[str, str], this: str, *others: str):
    at = open_page(runs[this], "Compare", experiment_id=runs["experiment"],
                   compare_ids=[runs[o] for o in others])  # fmt: skip
    assert not at.exception
    return at


def _label(runs: dict[str, str], name: str) -> str:
    return f"served-{name} ({runs[name][:6]})"


def test_each_runs_served_decision_is_paired_as_sensitivity_and_specificity(
    page_env, served_runs, mlflow_server
):
    at = _open(served_runs, "low", "high", "nevus", "argmax")
    [served] = [t.value for t in at.table if "Measure" in t.value.columns]
    sensitivity, specificity = (row for _, row in served.iterrows())
    assert sensitivity["Run"] == _label(served_runs, "high")
    assert sensitivity["Measure"] == "sensitivity (4 images of 'melanoma')"
    # this run's figure is the evaluator's own at its threshold
    logged = MlflowClient(mlflow_server).get_run(served_runs["low"]).data.metrics
    assert logged["eval_thr_sensitivity_melanoma"] == 1.0
    # written as the leaderboard writes eval_thr_sensitivity_melanoma (dashboard.readable)
    assert sensitivity["This run"] == "1 (4/4), P ≥ 0"
    assert sensitivity["Other run"] == "0 (0/4), P ≥ 1"
    assert sensitivity["Difference"] == "-1"
    low, high = paired_interval(0, 4, 0, 0)  # all 4 found by this run alone
    assert (low, round(high, 3)) == (-1, -0.307)
    assert sensitivity["95% interval"] == "-1 to -0.307"
    assert sensitivity["Verdict"] == (
        f"no clear difference on these images (4 right only by {_label(served_runs, 'low')}, "
        f"0 only by {_label(served_runs, 'high')}; McNemar mid-p = 0.0625; the interval "
        "excludes 0, but the test decides)"
    )
    [caption] = [c.value for c in at.caption if "Newcombe interval" in c.value]
    assert "the McNemar mid-p test on the images the two decisions get differently" in caption
    assert specificity["Measure"] == "specificity (4 other images)"
    assert (specificity["This run"], specificity["Difference"]) == ("0 (0/4), P ≥ 0", "+1")
    notes = [i.value for i in at.info]
    # the other two: one line each says why they have no such rows
    [other_class] = [n for n in notes if _label(served_runs, "nevus") in n and "shown for" in n]
    assert other_class == (
        "Sensitivity and specificity at each run's own decision threshold are not shown for "
        f"{_label(served_runs, 'nevus')}: {_label(served_runs, 'low')} takes 'melanoma' as its "
        f"positive class and {_label(served_runs, 'nevus')} 'nevus': their sensitivities are of "
        "different classes."
    )
    [no_threshold] = [n for n in notes if _label(served_runs, "argmax") in n and "shown for" in n]
    assert f"{_label(served_runs, 'argmax')} has no decision threshold (its trainer" in no_threshold


def test_verdicts_are_in_tables_that_wrap_them(page_env, served_runs):
    at = _open(served_runs, "low", "high")
    assert not any("Verdict" in f.value.columns for f in at.dataframe)  # cells cut off there
    verdicts = [t.value for t in at.table if "Verdict" in t.value.columns]
    assert len(verdicts) == 2  # the most probable class's figures, and the served decision's
    assert all(v["Verdict"].str.len().gt(0).all() for v in verdicts)


def _command(run_id: str) -> str:
    """The command the page shows, with the page's server and DATA_DIR (``page_env``)."""
    command = cli_command(get_settings(), "evaluator", run_id)
    assert command.startswith(f"MLFLOW_TRACKING_URI={get_settings().mlflow_tracking_uri} ")
    return command


def test_a_compared_run_without_an_evaluation_is_offered_its_next_step(page_env, served_runs):
    bare = served_runs["bare"]
    at = _open(served_runs, "low", "bare")
    [step] = [i.value for i in at.info if "has no evaluation yet" in i.value]
    assert step == (
        f"{_label(served_runs, 'bare')} has no evaluation yet — press Evaluate this run on its "
        f"Evaluation tab (the button below) or run `{_command(bare)}`; "
        "Compare then pairs the runs' test predictions image by image."
    )
    button = at.button(key=f"compare_evaluate_{bare}")
    assert button.label == "Open served-bare to evaluate it"
    at = button.click().run()
    assert not at.exception
    # the run open on its Evaluation tab, whose button makes the evaluation; this run kept to
    # compare with
    assert at.session_state["run_id"] == bare and at.session_state["tab"] == "Evaluation"
    assert at.session_state["compare_ids"] == [served_runs["low"]]
    assert at.button(key="job_evaluate").label == "Evaluate this run"


def test_an_open_run_without_an_evaluation_is_offered_its_next_step(page_env, served_runs):
    bare = served_runs["bare"]
    at = _open(served_runs, "bare", "low")
    assert "Is the difference real?" in [s.value for s in at.subheader]
    [step] = [i.value for i in at.info if "has no evaluation yet" in i.value]
    assert step.startswith(
        "This run has no evaluation yet — press Evaluate this run on the Evaluation tab or run "
        f"`{_command(bare)}`"
    )
    at = at.button(key=f"compare_evaluate_{bare}").click().run()
    assert at.session_state["tab"] == "Evaluation" and at.session_state["run_id"] == bare
