"""One rule for a figure (``dashboard.readable``): a test figure is named and written alike on the
Evaluation tab, the leaderboard, Compare and the interval chart's text alternative. Real runs on
the real MLflow server, in an experiment of their own."""

import json
import time
import uuid

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from runs import contract
from tests.dashboard.conftest import open_page

# Stored a hair below the ties: ``:.4g`` / ``.round(4)`` write 0.9912, a person rounds to 0.9913;
# the low bound to three digits: 0.912 rounding the binary value, 0.913 by hand.
TIE, LOW, HIGH = 0.99125, 0.9125, 0.9975


def _evaluated(client: MlflowClient, experiment: str, name: str, accuracy: float) -> str:
    """A finished run with an evaluation's tags and its test accuracy with a 95 % interval."""
    run_id = client.create_run(experiment, run_name=name).info.run_id
    folder = f"evaluation/{name}-1"
    now = int(time.time() * 1000)
    figures = {"eval_accuracy": accuracy, "eval_accuracy_ci_low": LOW,
               "eval_accuracy_ci_high": HIGH}  # fmt: skip
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in figures.items()])
    client.log_param(run_id, "class_names", '["benign", "malignant"]')
    client.set_tag(run_id, contract.EVALUATION_PATH_TAG, folder)
    for key, value in contract.evaluation_tags("none", True, "h1", folder, 40).items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id)
    return run_id


@pytest.fixture(scope="module")
def tie_runs(mlflow_server) -> dict[str, str]:
    """``tie`` (test accuracy ``TIE``), ``other`` (0.8) and their ``experiment``."""
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"evaluation-readable-{uuid.uuid4().hex[:8]}")
    return {
        "experiment": experiment,
        "other": _evaluated(client, experiment, "other", 0.8),
        "tie": _evaluated(client, experiment, "tie", TIE),
    }


def _open(runs: dict[str, str], tab: str, **state):
    at = open_page(runs["tie"], tab, experiment_id=runs["experiment"],
                   leaderboard_columns=["eval_accuracy"], **state)  # fmt: skip
    assert not at.exception
    return at


def _leaderboard(at) -> tuple[str, str]:
    """The ``tie`` run's test accuracy on the leaderboard, and the name of its column."""
    board = at.dataframe[0].value
    board = board.set_index(board["run"].str.removeprefix("▶ "))
    label = json.loads(at.dataframe[0].proto.columns)["eval_accuracy"]["label"]
    return board.loc["tie", "eval_accuracy"], label


def test_a_test_figure_reads_the_same_on_the_evaluation_tab_and_the_leaderboard(page_env, tie_runs):
    at = _open(tie_runs, "Evaluation")
    cell, label = _leaderboard(at)
    table = next(f.value for f in at.dataframe if "Metric" in f.value.columns)
    row = table.set_index("Metric").loc[label]  # named as the leaderboard's column
    assert (label, row["MLflow key"]) == ("test accuracy", "eval_accuracy")
    value, low, high = row[["Value", "95% CI low", "95% CI high"]]
    assert (value, low, high) == ("0.9913", "0.913", "0.998")
    assert cell.removesuffix(" ★") == f"{value} ({low}–{high})"
    [alt] = [c.proto.alt for c in at.get("vega_lite_chart")]
    assert alt == f"Values with 95% intervals: {label} {value} ({low} to {high})."


def test_compare_names_the_figure_as_the_leaderboard_does(page_env, tie_runs):
    at = _open(tie_runs, "Compare", compare_ids=[tie_runs["other"]])
    cell, label = _leaderboard(at)
    table = next(f.value for f in at.dataframe if "eval_accuracy" in f.value.index)
    row = table.loc["eval_accuracy"]
    assert row["metric"] == f"{label} ↑"
    assert list(row.iloc[1:]) == [cell, "0.8 (0.913–0.998)"]
