"""How the leaderboard and the Metrics tab name a metric and write its figure (``readable``), and
the leaderboard's ``test n``: on the page, against runs of an experiment of their own."""

import json
import math
import time
import uuid

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from dashboard import leaderboard, readable
from runs import contract
from tests.dashboard.charts import chart_of
from tests.dashboard.conftest import open_page

TIE = 0.99125  # stored a hair below 0.99125: ``:.4g`` writes 0.9912, a person rounds to 0.9913


def _evaluated(client: MlflowClient, experiment: str, name: str, auc: float, n: int | None):
    """A finished run evaluated (its tags as the evaluator sets them) on ``n`` test images (None:
    by an evaluator from before the count)."""
    run_id = client.create_run(experiment, run_name=name).info.run_id
    folder = f"evaluation/{name}-1"
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("eval_roc_auc_macro", auc, now, 0)])
    client.log_param(run_id, "class_names", '["benign", "malignant"]')
    client.set_tag(run_id, contract.EVALUATION_PATH_TAG, folder)
    for key, value in contract.evaluation_tags("none", True, "h1", folder, n).items():
        client.set_tag(run_id, key, value)
    return run_id


@pytest.fixture(scope="module")
def readable_runs(mlflow_server) -> dict[str, str]:
    """Run ids by name and the experiment: ``few`` (40 test images; a validation AUC history
    ending at ``TIE``, ``best_val_auc`` ``TIE``, an epoch time per epoch), ``many`` (2,000 test
    images) and ``older`` (evaluated before the evaluator recorded the count)."""
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"readable-{uuid.uuid4().hex[:8]}")
    runs = {"experiment": experiment}
    runs["older"] = _evaluated(client, experiment, "older", 0.8, None)
    runs["many"] = _evaluated(client, experiment, "many", 0.85, 2000)
    runs["few"] = few = _evaluated(client, experiment, "few", TIE, 40)
    now = int(time.time() * 1000)
    history = [("val_auc", 0.9, 0), ("val_auc", TIE, 1), ("epoch_time", 30.5, 0),
               ("epoch_time", 29.25, 1), ("best_val_auc", TIE, 0)]  # fmt: skip
    client.log_batch(few, metrics=[Metric(k, v, now + step, step) for k, v, step in history])
    for run_id in (runs["older"], runs["many"], few):
        client.set_terminated(run_id)
    return runs


def test_a_metric_is_named_for_a_person_and_an_unknown_key_is_left_as_it_is():
    named = {
        "eval_roc_auc_macro": "test AUC (macro)",
        "eval_accuracy": "test accuracy",
        "eval_balanced_accuracy": "test balanced accuracy",
        "eval_sensitivity_melanoma": "test sensitivity (melanoma)",
        "eval_thr_specificity_nevus": "test specificity at threshold (nevus)",
        "eval_accuracy_ci_low": "test accuracy, 95 % interval low",
        "val_auc": "validation AUC",
        "best_val_auc": "best validation AUC",
        "member2_val_loss": "member 2 validation loss",
        "train_loss": "training loss",
        "epoch_time": "epoch time (s)",
        "accuracy_ü": "accuracy_ü",  # logged by hand: not guessed
        "val_something": "val_something",
        "eval_made_up": "eval_made_up",
    }
    assert {key: readable.label(key) for key in named} == named
    assert readable.option("val_auc") == "validation AUC · val_auc"
    assert readable.option("accuracy_ü") == "accuracy_ü"


def test_a_figure_is_rounded_half_up_from_the_number_mlflow_shows():
    assert f"{TIE:.4g}" == "0.9912"  # what the leaderboard wrote
    assert readable.figure(TIE) == "0.9913"
    assert readable.figure(-TIE) == "-0.9913"
    assert readable.figure(0.8125, 3) == "0.813"  # an exact binary tie too
    assert readable.figure(0.8) == "0.8"
    assert readable.figure(1 / 2000) == "0.0005"
    assert readable.figure(0.0) == "0"
    assert readable.figure(2.8e-17, 3) == "0"  # a computed 0, not 2.80e-17
    assert readable.figure(None) == readable.figure(math.nan) == "–"


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [
        (0.99995, 4, "0.99995"),  # an AUC short of perfect: not "1"
        (0.99996, 4, "0.99996"),
        (0.9996, 3, "0.9996"),  # an interval's bound: not "1"
        (0.99999999, 4, "0.99999999"),
        (-0.99995, 4, "-0.99995"),  # a difference in Compare
        (1.00004, 4, "1.00004"),
        (1.0, 4, "1"),
        (-1.0, 3, "-1"),
        (1 - 2**-53, 4, "1"),  # 1 to floating-point noise, as 2.8e-17 is 0
        (0.9999, 4, "0.9999"),
        (0.049995, 4, "0.05"),  # a bound of nothing: rounds as any figure
    ],
)
def test_a_figure_short_of_one_never_reads_one(value, digits, shown):
    assert readable.figure(value, digits) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (12345, "12345"),  # an epoch time in seconds, a step: whole, not 1.235e+04
        (12345.6, "12346"),
        (9999.5, "10000"),  # not 1e+04
        (-12345.6, "-12346"),
        (123.456, "123.5"),
        (29.25, "29.25"),
        (40, "40"),
        (-0.0123, "-0.0123"),  # hyphen-minus, as Compare's "+0.0123" / "-0.0123"
        (0.001, "0.001"),
        (2e-12, "2.00e-12"),  # tiny, not 0
        (3.4e38, "3.400e+38"),  # a diverged loss
        (math.inf, "inf"),
        (-math.inf, "-inf"),
    ],
)
def test_a_figure_of_one_or_more_is_written_in_fixed_notation(value, shown):
    assert readable.figure(value) == shown


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [
        (-4.18e-4, 4, "-0.000418"),  # a small difference beside "+0.05128", not "-4.18e-04"
        (-4.185e-4, 3, "-0.000419"),  # half up, as any figure
        (1e-4, 4, "0.0001"),  # a learning rate
        (9.99e-7, 4, "9.99e-07"),  # tiny: scientific
    ],
)
def test_a_small_figure_is_written_in_fixed_notation_unless_tiny(value, digits, shown):
    assert readable.figure(value, digits) == shown


def _open(runs: dict[str, str], run: str = "few", tab: str | None = None, **state):
    return open_page(runs[run], tab, experiment_id=runs["experiment"], **state)


def _board(at):
    return at.dataframe[0].value.set_index(at.dataframe[0].value["run"].str.removeprefix("▶ "))


def test_leaderboard_columns_are_named_for_a_person_with_the_mlflow_key_in_their_help(
    page_env, readable_runs
):
    at = _open(readable_runs, leaderboard_columns=["eval_roc_auc_macro", "val_auc"])
    assert not at.exception
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["eval_roc_auc_macro"]["label"] == "test AUC (macro)"
    assert config["eval_roc_auc_macro"]["help"].endswith("In MLflow: eval_roc_auc_macro")
    assert config["val_auc"]["label"] == "validation AUC"
    assert "eval_roc_auc_macro" in _board(at).columns  # the data keeps the keys
    picker = at.multiselect(key="leaderboard_columns")
    assert "epoch time (s) · epoch_time" in picker.options
    assert picker.value == ["eval_roc_auc_macro", "val_auc"]
    assert "test AUC (macro) · eval_roc_auc_macro" in at.selectbox(key="run_sort").options


def test_the_leaderboard_says_how_many_test_images_each_evaluation_rests_on(
    page_env, readable_runs
):
    at = _open(readable_runs, leaderboard_columns=["eval_roc_auc_macro"])
    board = _board(at)
    assert board.loc["few", leaderboard.TEST_N] == "40"
    assert board.loc["many", leaderboard.TEST_N] == "2000"
    assert board.loc["older", leaderboard.TEST_N] == "–"  # not known: not a guess
    config = json.loads(at.dataframe[0].proto.columns)[leaderboard.TEST_N]
    assert contract.EVALUATION_N_TAG in config["help"]
    [few] = [m.value for m in at.markdown if m.value.startswith("**Few test images**")]
    assert "few (40)" in few and "many" not in few and "older" not in few


def test_a_figure_reads_the_same_on_the_leaderboard_and_the_metrics_tab(page_env, readable_runs):
    at = _open(readable_runs, tab="Metrics", leaderboard_columns=["val_auc", "best_val_auc"])
    assert not at.exception
    board = _board(at)
    summary = next(f.value for f in at.dataframe if "latest" in f.value.columns)
    [tile] = [m.value for m in at.metric if m.label.startswith("best")]  # its only single value
    shown = {
        "leaderboard val_auc": board.loc["few", "val_auc"],
        "leaderboard best_val_auc": board.loc["few", "best_val_auc"],
        "Metrics tab val_auc (latest)": summary.loc["val_auc", "latest"],
        "Metrics tab val_auc (max)": summary.loc["val_auc", "max"],
        "Metrics tab best_val_auc": tile,
    }
    assert set(shown.values()) == {"0.9913"}, shown


def test_the_metrics_tab_gives_the_epoch_time_in_seconds(page_env, readable_runs):
    few = readable_runs["few"]
    at = _open(readable_runs, tab="Metrics", **{f"chart_metrics_{few}": ["epoch_time"]})
    assert not at.exception
    summary = next(f.value for f in at.dataframe if "latest" in f.value.columns)
    assert summary.loc["epoch_time", "metric"] == "epoch time (s)"
    assert summary.loc["epoch_time", "latest"] == "29.25"
    assert "epoch time (s) · epoch_time" in at.multiselect(key=f"chart_metrics_{few}").options
    spec, _ = chart_of(at, "key")
    title = spec["facet"]["header"]["labelExpr"]  # the panel's title
    assert 'datum.value === "epoch_time" ? "epoch time (s)"' in title
