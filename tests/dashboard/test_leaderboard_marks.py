"""What the leaderboard stars and marks, found by a clinician's probe: a model of constant output,
sensitivity at each run's own threshold, the test figures out of sight at 1366 px, and notes
whose ``*`` Markdown ate."""

import json
import uuid

from mlflow.tracking import MlflowClient

from common import metric_keys
from dashboard import leaderboard
from dashboard.basis import flat_note
from runs import contract
from tests.dashboard.conftest import open_page
from tests.dashboard.test_leaderboard import _evaluated

SENS, SPEC = "eval_thr_sensitivity_malignant", "eval_thr_specificity_malignant"


def _flat(run: dict, spread: float = 1e-8) -> dict:
    """``run`` as the evaluator tags it when its probabilities spread by ``spread``."""
    folder = run["tags"][contract.EVALUATION_PATH_TAG]
    run["tags"].update(contract.evaluation_tags("none", True, "h1", folder, 156, spread))
    return run


def _probe() -> list[dict]:
    """The probe's page: two models, and a mobilenet whose P(malignant) was 0.4378215 ± 5e-9 for
    every test image, its threshold inside that noise."""
    rows = [_evaluated("resnet", 0.85), _evaluated("smallcnn", 0.8), _flat(_evaluated("mob", 0.6))]
    figures = [(0.81, 0.85, 0.70), (0.79, 0.80, 0.75), (0.6177, 0.9286, 0.10)]
    for row, (auc, sens, spec) in zip(rows, figures, strict=True):
        row["metrics"] |= {"eval_roc_auc_macro": auc, SENS: sens, SPEC: spec, "best_val_auc": 0.8}
    return rows


def _marks(column) -> list[str]:
    """What follows each cell's figure (``★``, ``† ...``), however the figure is written."""
    return [cell.partition(" ")[2] for cell in column]


def test_a_run_of_constant_probabilities_is_marked_and_gets_no_star():
    table = leaderboard.table(_probe(), ["eval_roc_auc_macro", "eval_accuracy", "eval_ece"])
    flat = table.loc["mob" * 4]
    for metric in ("eval_roc_auc_macro", "eval_accuracy"):
        assert flat[metric].endswith("† constant probabilities"), flat[metric]
    assert _marks(table["eval_roc_auc_macro"]) == ["★", "", "† constant probabilities"]
    assert flat_note([leaderboard.basis_of(r) for r in _probe()]).startswith(
        "† constant probabilities (1 run(s))"
    )


def test_a_wide_spread_or_an_evaluation_without_the_record_is_not_marked():
    real = _flat(_evaluated("real", 0.9), spread=0.4)
    older = _evaluated("older", 0.8)  # published before the evaluator recorded the spread
    moved = _flat(_evaluated("moved", 0.7))  # then evaluated again by an evaluator without it
    moved["tags"][contract.EVALUATION_PATH_TAG] = "evaluation/moved-2"
    moved["tags"][contract.EVALUATION_BASIS_TAG] = "evaluation/moved-2"
    garbled = _flat(_evaluated("garbled", 0.6))
    garbled["tags"][contract.EVALUATION_RANGE_TAG] = "n/a"
    rows = [real, older, moved, garbled]
    assert [leaderboard.basis_of(r).flat for r in rows] == [False] * 4
    assert _marks(leaderboard.table(rows, ["eval_accuracy"])["eval_accuracy"]) == ["★", "", "", ""]
    assert flat_note([leaderboard.basis_of(r) for r in rows]) is None


def test_sensitivity_at_each_runs_own_threshold_is_a_trade_off_not_a_best():
    """The run that calls more images positive wins sensitivity and loses specificity."""
    rows = _probe()[:2]
    table = leaderboard.table(rows, [SENS, SPEC, "eval_roc_auc_macro"])
    assert _marks(table[SENS]) == ["", ""] and _marks(table[SPEC]) == ["", ""]
    assert _marks(table["eval_roc_auc_macro"]) == ["★", ""]  # still a best
    assert "trade-off" in leaderboard.column_help(SENS)
    assert not leaderboard.ranked(SENS) and metric_keys.trade_off(SPEC + "_ci_low")
    assert leaderboard.ranked("eval_sensitivity_malignant")  # of the argmax: still ranked


def test_the_test_figures_come_right_after_the_runs_name_and_status():
    """At 1366×768 the columns on screen ended at best validation AUC: no test figure."""
    rows = _probe()
    defaults = leaderboard.default_columns(rows)
    assert defaults[0].startswith(metric_keys.EVAL_PREFIX) and defaults[-1] == "best_val_auc"
    table = leaderboard.table(rows, ["best_val_auc", "eval_roc_auc_macro", SENS])
    assert list(table.columns) == [
        "run", "status", leaderboard.TEST_N, "eval_roc_auc_macro", SENS, "best_val_auc",
        "model", "started", "duration", "deployable",
    ]  # fmt: skip


def _logged(client: MlflowClient, experiment: str, row: dict) -> None:
    run = client.create_run(experiment, run_name=row["run_name"], tags=row["tags"])
    for key, value in row["metrics"].items():
        client.log_metric(run.info.run_id, key, value)
    client.log_param(run.info.run_id, "class_names", json.dumps(["benign", "malignant"]))
    client.set_terminated(run.info.run_id)


def test_the_page_shows_test_figures_first_and_says_what_its_marks_mean(page_env, mlflow_server):
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"leaderboard-marks-{uuid.uuid4().hex[:8]}")
    for row in _probe():
        row["tags"][contract.EVALUATED_TAG] = "true"
        _logged(client, experiment, row)
    at = open_page(experiment_id=experiment)
    shown = list(at.dataframe[0].value.columns)
    assert shown[:3] == ["run", "status", leaderboard.TEST_N], shown
    assert shown[3].startswith(metric_keys.EVAL_PREFIX), shown
    said = [m.value for m in at.markdown]
    assert any(m.startswith("† constant probabilities (1 run(s))") for m in said), said
    [note] = [m for m in said if "best on this page" in m]
    assert "(`eval_*`)" in note and "(`eval_thr_*`: add them)" in note  # not italics
