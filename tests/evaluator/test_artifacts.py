"""The files of an evaluation, written from a report: the misclassified list under a threshold."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from statsmodels.stats.proportion import proportion_confint

from common import metric_keys
from dataloader import ImageSet
from evaluator.artifacts import flat_metrics, write_artifacts
from evaluator.metrics import compute_metrics
from evaluator.ood import ood_report
from evaluator.operating_point import operating_points
from runs import OODReference, OperatingPoint, contract

POINT = OperatingPoint(
    positive_class="malignant", threshold=0.15, target_sensitivity=0.9,
    val_sensitivity=0.9, val_specificity=0.5, chosen_on="validation",
)  # fmt: skip


def _threshold_report() -> tuple[np.ndarray, np.ndarray, dict]:
    """Labels, probabilities and the report of 8 test images of a two-class run decided at a
    threshold of 0.15 for malignant: images 0-2 are served as malignant (argmax: benign)."""
    names = ["benign", "malignant"]
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    p1 = np.array([0.30, 0.25, 0.20, 0.90, 0.80, 0.05, 0.02, 0.60])
    probs = np.stack([1 - p1, p1], axis=1)
    report = compute_metrics(y, probs, names)
    report["operating_points"] = operating_points(y, probs, names, POINT)
    return y, probs, report


def test_a_threshold_runs_misclassified_list_is_the_mistakes_of_its_decision(tmp_path):
    y, probs, report = _threshold_report()
    test = ImageSet(np.zeros((8, 8, 8, 1), np.uint8), y, files=[f"{i}.png" for i in range(8)])
    write_artifacts(tmp_path, report, y, probs, test)
    wrong = pd.read_csv(tmp_path / contract.MISCLASSIFIED_CSV)
    # Served as malignant: 0, 1, 2 (benign) wrong; served as benign: 5 (malignant) wrong.
    assert wrong["index"].tolist() == [5, 0, 1, 2]  # by the probability of the class served
    assert wrong["decision"].tolist() == ["benign", "malignant", "malignant", "malignant"]
    assert wrong["confidence"].round(2).tolist() == [0.95, 0.30, 0.25, 0.20]


def test_every_logged_figure_states_which_way_is_better():
    """A figure added to the evaluator but not to common.metric_keys' lists would be ranked
    higher-is-better by the dashboard, whatever it means."""
    rng = np.random.default_rng(0)
    three = compute_metrics(np.arange(30) % 3, rng.dirichlet([1, 1, 1], 30), ["a", "b", "c"])
    check = OODReference([np.eye(1)], [np.zeros((1, 1))], 1.0, 0.99, 78, 546)
    three["out_of_distribution"] = ood_report([rng.random(30) * 2], check, [])
    reports = [_threshold_report()[2], three]  # two classes at a threshold; three with the check
    figures = {metric_keys.split_bound(key)[0] for r in reports for key in flat_metrics(r)}
    figures.discard(metric_keys.eval_key("threshold"))  # a setting, not a figure to rank
    assert len(figures) > 20
    assert [key for key in figures if not metric_keys.direction_stated(key)] == []


def test_classes_in_another_script_each_keep_their_figures(tmp_path):
    """良性 and 悪性 both read "class" in ASCII: the second's figures overwrote the first's."""
    names = ["良性", "悪性"]
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])  # sensitivity 0.5 and 1.0
    flat = flat_metrics(compute_metrics(y, probs, names))
    own = [key for key in flat if key.startswith("eval_sensitivity_")]
    recalls = {key: flat[key] for key in own if not metric_keys.is_bound(key)}
    assert sorted(recalls.values()) == [0.5, 1.0]
    assert sorted(key.split("_")[2] for key in recalls) == sorted(names)
    test = ImageSet(np.zeros((4, 8, 8, 1), np.uint8), y, files=[f"{i}.png" for i in range(4)])
    write_artifacts(tmp_path, compute_metrics(y, probs, names), y, probs, test)
    assert len(list((tmp_path / contract.MISCLASSIFIED_DIR).glob("*良性*_as_*悪性*.png"))) == 1


def test_a_threshold_run_also_gets_the_confusion_matrix_of_its_decision(tmp_path):
    y, probs, report = _threshold_report()
    write_artifacts(tmp_path, report, y, probs, ImageSet(np.zeros((8, 8, 8, 1), np.uint8), y))
    with Image.open(tmp_path / "confusion_matrix_threshold.png") as png:
        assert png.format == "PNG"


def test_metrics_json_holds_accuracy_ppv_and_npv_at_the_threshold(tmp_path):
    names = ["benign", "malignant"]
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    p1 = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1])
    probs = np.stack([1 - p1, p1], axis=1)
    point = OperatingPoint(
        positive_class="malignant", threshold=0.5, target_sensitivity=0.9,
        val_sensitivity=0.9, val_specificity=0.5, chosen_on="validation",
    )  # fmt: skip
    report = compute_metrics(y, probs, names)
    report["operating_points"] = operating_points(y, probs, names, point)
    write_artifacts(tmp_path, report, y, probs, ImageSet(np.zeros((10, 8, 8, 1), np.uint8), y))
    at = json.loads((tmp_path / contract.METRICS_JSON).read_text())["operating_points"]["threshold"]
    # Decided malignant: images 0, 1 (right) and 3 (wrong); benign: 2 (wrong) and 4-9 (right).
    for key, (hits, total) in {"accuracy": (8, 10), "ppv": (2, 3), "npv": (6, 7)}.items():
        low, high = proportion_confint(hits, total, method="wilson")
        assert at[key] == pytest.approx(
            {"value": hits / total, "ci_low": low, "ci_high": high, "method": "wilson"}
        )


def test_the_misclassified_list_names_the_rule_that_decided_it(tmp_path):
    y, probs, report = _threshold_report()
    write_artifacts(tmp_path, report, y, probs, ImageSet(np.zeros((8, 8, 8, 1), np.uint8), y))
    wrong = pd.read_csv(tmp_path / contract.MISCLASSIFIED_CSV)
    assert set(wrong["rule"]) == {"threshold: malignant when P(malignant) >= 0.15"}


def test_figures_at_the_threshold_under_tta_carry_a_caveat():
    """The threshold was chosen on single-pass probabilities; flip-averaged ones differ."""
    y, probs, _ = _threshold_report()
    at = operating_points(y, probs, ["benign", "malignant"], POINT, tta="horizontal")
    assert "tta=horizontal" in at["threshold"]["caveat"]


def test_names_that_a_spreadsheet_would_run_open_as_text_and_read_back_as_written(tmp_path):
    """A class folder or file named "=HYPERLINK(...)" must not become a formula in Excel."""
    from dashboard.paired import read_predictions

    names = ['=HYPERLINK("http://x")', "-1"]
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    files = ["+cmd|' /C calc'!A0.png", "@SUM(A1).png", "'=quoted.png", "-2.png"]
    test = ImageSet(np.zeros((4, 8, 8, 1), np.uint8), y, files=files)
    write_artifacts(tmp_path, compute_metrics(y, probs, names), y, probs, test)
    raw = (tmp_path / contract.PREDICTIONS_CSV).read_bytes()
    cells = pd.read_csv(tmp_path / contract.PREDICTIONS_CSV, dtype=str)
    assert cells["file"].tolist() == ["'+cmd|' /C calc'!A0.png", "'@SUM(A1).png", "''=quoted.png",
                                      "'-2.png"]  # fmt: skip
    assert set(cells["true_label"]) == {'\'=HYPERLINK("http://x")', "-1"}  # -1: a number
    back = read_predictions(raw)
    assert back["file"].tolist() == files and back["true_label"].tolist() == [names[i] for i in y]
    wrong = pd.read_csv(tmp_path / contract.MISCLASSIFIED_CSV, dtype=str)
    assert all(not cell.startswith(("=", "+", "@")) for cell in wrong.to_numpy().ravel())
