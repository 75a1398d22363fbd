import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from evaluator.metrics import (
    _Bootstrapped,
    compute_metrics,
    expected_calibration_error,
)
from runs import schemas


def _predictions(n: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


@pytest.mark.parametrize("k", [2, 4])
def test_averages_equal_scikit_learn(k):
    y, probs = _predictions(300, k)
    pred = probs.argmax(1)
    report = compute_metrics(y, probs, [f"c{i}" for i in range(k)])["overall"]
    for avg in ("macro", "weighted"):
        assert report[f"precision_{avg}"]["value"] == pytest.approx(
            precision_score(y, pred, average=avg)
        )
        assert report[f"recall_{avg}"]["value"] == pytest.approx(recall_score(y, pred, average=avg))
        assert report[f"f1_{avg}"]["value"] == pytest.approx(f1_score(y, pred, average=avg))
    assert report["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(y, pred))
    expected_auc = (
        roc_auc_score(y, probs[:, 1]) if k == 2 else roc_auc_score(y, probs, multi_class="ovr")
    )
    assert report["roc_auc_macro"]["value"] == pytest.approx(expected_auc)


def test_per_class_sensitivity_specificity_and_auc_equal_scikit_learn():
    y, probs = _predictions(250, 3, seed=1)
    pred = probs.argmax(1)
    per_class = compute_metrics(y, probs, ["a", "b", "c"])["per_class"]
    for c, name in enumerate("abc"):
        positive, predicted = y == c, pred == c
        assert per_class[name]["sensitivity"]["value"] == pytest.approx(
            recall_score(positive, predicted)
        )
        assert per_class[name]["specificity"]["value"] == pytest.approx(
            recall_score(~positive, ~predicted)
        )
        assert per_class[name]["roc_auc"]["value"] == pytest.approx(
            roc_auc_score(positive, probs[:, c])
        )


def test_every_interval_contains_its_value():
    y, probs = _predictions(200, 3, seed=2)
    report = compute_metrics(y, probs, ["a", "b", "c"])
    estimates = list(report["overall"].values()) + [
        est for cls in report["per_class"].values() for est in cls.values() if isinstance(est, dict)
    ]
    for est in estimates:
        assert est["ci_low"] <= est["value"] + 1e-9 <= est["ci_high"] + 2e-9, est


def test_interval_methods_are_wilson_delong_and_bootstrap():
    y, probs = _predictions(200, 3, seed=3)
    report = compute_metrics(y, probs, ["a", "b", "c"])
    assert report["overall"]["accuracy"]["method"] == "wilson"
    assert report["per_class"]["a"]["roc_auc"]["method"] == "delong"
    assert report["overall"]["f1_macro"]["method"] == "bootstrap_percentile"


def test_bootstrap_is_seeded():
    y, probs = _predictions(150, 3, seed=4)
    assert compute_metrics(y, probs, list("abc")) == compute_metrics(y, probs, list("abc"))


def test_the_report_says_how_its_intervals_were_computed():
    y, probs = _predictions(120, 2, seed=6)
    how = compute_metrics(y, probs, ["a", "b"], seed=3)["computed_with"]
    assert (how["bootstrap_resamples"], how["bootstrap_seed"]) == (1000, 3)
    assert how["packages"]["numpy"] == np.__version__ and how["packages"]["scikit-learn"]


def test_class_absent_from_test_set_gives_null_auc_with_reason():
    y, _ = _predictions(60, 2, seed=5)
    probs = np.random.default_rng(5).dirichlet([1, 1, 1], len(y))
    report = compute_metrics(y, probs, ["a", "b", "c"])
    absent = report["per_class"]["c"]
    assert absent["roc_auc"]["value"] is None
    assert "absent" in absent["roc_auc"]["reason"]
    assert absent["sensitivity"]["value"] is None
    assert report["overall"]["roc_auc_macro"]["value"] is None
    assert "'c'" in report["overall"]["roc_auc_macro"]["reason"]
    assert report["overall"]["accuracy"]["value"] is not None


def test_a_class_absent_from_the_test_set_is_left_out_of_the_averages_and_named():
    y, _ = _predictions(200, 2, seed=6)
    probs = np.random.default_rng(6).dirichlet([1, 1, 1], len(y))  # c predicted, never true
    report = compute_metrics(y, probs, ["a", "b", "c"])
    assert report["absent_classes"] == ["c"]
    note = schemas.EvaluationReport.model_validate(report).absent_note  # the CLI and caveat
    assert note.startswith("the test split has no image of 'c': its figures are n/a")
    assert report["per_class"]["c"]["f1"]["value"] is None  # was 0.0 [0.0, 0.0]
    assert "no samples of class 'c'" in report["per_class"]["c"]["f1"]["reason"]
    pred = probs.argmax(1)
    overall = report["overall"]
    # Macro recall is balanced accuracy (recall 0 counted for c made it two thirds of it).
    assert overall["recall_macro"]["value"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert overall["recall_macro"]["value"] == overall["balanced_accuracy"]["value"]
    assert overall["f1_macro"]["value"] == pytest.approx(
        f1_score(y, pred, labels=[0, 1], average="macro", zero_division=0)
    )
    low, high = overall["recall_macro"]["ci_low"], overall["recall_macro"]["ci_high"]
    assert low <= overall["recall_macro"]["value"] <= high  # the bootstrap covers the same classes


def test_ece_of_overconfident_predictions():
    # Confidence 0.9 everywhere, half of the predictions right: ECE = |0.5 - 0.9| = 0.4.
    y = np.array([0, 1] * 50)
    probs = np.tile([0.9, 0.1], (100, 1))
    assert expected_calibration_error(y, probs) == pytest.approx(0.4)


def test_ece_of_perfect_confident_predictions_is_zero():
    y = np.array([0, 1, 1, 0])
    probs = np.eye(2)[y]
    assert expected_calibration_error(y, probs) == pytest.approx(0.0)


def test_each_bootstrapped_row_is_its_own_metric_on_the_whole_test_set():
    """The statistic resampled for the intervals, given every image once, is each named metric
    by scikit-learn: a metric computed into another's row would take that one's interval."""
    y, probs = _predictions(300, 3)
    pred = probs.argmax(1)
    stat = _Bootstrapped(y, probs, with_auc=True)
    rows = dict(zip(stat.names, stat(np.arange(len(y)))[:, 0], strict=True))
    expected = {
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "ece": expected_calibration_error(y, probs),
        "roc_auc_macro": roc_auc_score(y, probs, multi_class="ovr", average="macro"),
        **{f"f1/{c}": f for c, f in enumerate(f1_score(y, pred, average=None))},
    }
    for name, score in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        for avg in ("macro", "weighted"):
            expected[f"{name}_{avg}"] = score(y, pred, average=avg)
    assert rows == pytest.approx(expected)


def test_the_intervals_memory_does_not_grow_with_the_resamples():
    """The bootstrap runs in batches: 10,000 test images peaked at 840 MB with all 1000
    resamples at once (a 30,000-image split outgrew the evaluator's 4 GiB pod)."""
    y, probs = _predictions(10_000, 3)
    tracemalloc.start()
    try:
        report = compute_metrics(y, probs, ["a", "b", "c"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MB"
    assert report["overall"]["balanced_accuracy"]["ci_low"] is not None


def test_both_classes_of_a_two_class_run_have_the_one_auc_of_the_positive_scores():
    # 1 - p in float32 ties scores that p tells apart (1e-8, 2e-8, 3e-8 all give 1.0): computed
    # from its own column, benign's AUC was 0.65625 beside malignant's 0.6875.
    p1 = np.array([1e-8, 2e-8, 3e-8, 0.4, 0.6, 0.7, 0.2, 0.9], dtype=np.float32)
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    probs = np.stack([np.float32(1) - p1, p1], 1)
    report = compute_metrics(y, probs, ["benign", "malignant"])
    benign, malignant = (report["per_class"][c]["roc_auc"] for c in ("benign", "malignant"))
    assert benign == malignant == report["overall"]["roc_auc_macro"]
    assert malignant["value"] == roc_auc_score(y, p1.astype(np.float64)) == 0.6875
