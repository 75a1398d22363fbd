import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dashboard import paired
from dashboard.paired import Difference, p_text, paired_differences, why_not_paired, why_other_data
from runs.schemas import EvaluationReport

CLASSES = ("benign", "malignant", "normal")


def _predictions(y: np.ndarray, probs: np.ndarray, classes=CLASSES) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"index": np.arange(len(y)), "file": [f"test/{i}.png" for i in range(len(y))],
         "true_label": [classes[i] for i in y]}
    )  # fmt: skip
    for c, name in enumerate(classes):
        frame[f"prob_{name}"] = probs[:, c]
    return frame


def _model(y: np.ndarray, skill: float, seed: int, k: int = 3) -> np.ndarray:
    """Probabilities that favour the true class by ``skill`` (0: chance)."""
    logits = np.random.default_rng(seed).normal(size=(len(y), k))
    logits[np.arange(len(y)), y] += skill
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


def test_a_clearly_better_model_is_named_better():
    y = np.random.default_rng(0).integers(0, 3, 300)
    weak, strong = _predictions(y, _model(y, 0.3, 1)), _predictions(y, _model(y, 3.0, 2))
    auc, accuracy = paired_differences(weak, strong, n_resamples=500)
    assert auc.metric == "roc_auc_macro" and 0 < auc.ci_low <= auc.value <= auc.ci_high
    assert accuracy.ci_low > 0
    assert auc.verdict("weak", "strong") == "strong is better"
    reverse = paired_differences(strong, weak, n_resamples=500)[0]
    assert reverse.value == pytest.approx(-auc.value)
    assert reverse.verdict("strong", "weak") == "strong is better"


def test_equally_good_models_are_rarely_told_apart():
    # Same skill, independent errors: the 95 % interval of the difference should hold 0 in
    # about 95 % of test sets (the procedure's false alarm rate).
    covered = []
    for seed in range(40):
        y = np.random.default_rng(seed).integers(0, 3, 150)
        a = _predictions(y, _model(y, 1.5, 100 + seed))
        b = _predictions(y, _model(y, 1.5, 200 + seed))
        covered += [d.ci_low < 0 < d.ci_high for d in paired_differences(a, b, n_resamples=300)]
    assert np.mean(covered) >= 0.85, np.mean(covered)


def test_pairing_narrows_the_interval_of_correlated_models():
    # b is a with a small, consistent improvement: paired, the gain is clear; the two runs'
    # own accuracy intervals would overlap almost entirely.
    y = np.random.default_rng(0).integers(0, 2, 400)
    base = _model(y, 1.0, 3, k=2)
    better = base.copy()
    flip = np.flatnonzero(base.argmax(1) != y)[:12]  # 12 more images right (3 %)
    better[flip] = better[flip][:, ::-1]
    classes = ("benign", "malignant")
    _, accuracy = paired_differences(
        _predictions(y, base, classes), _predictions(y, better, classes), n_resamples=1000
    )
    assert accuracy.value == pytest.approx(12 / 400)
    assert accuracy.ci_low > 0


def test_two_class_auc_counts_the_positive_class_once():
    y = np.random.default_rng(0).integers(0, 2, 100)
    probs = _model(y, 1.0, 4, k=2)
    classes = ("benign", "malignant")
    flat = np.full_like(probs, 0.5)
    auc = paired_differences(
        _predictions(y, flat, classes), _predictions(y, probs, classes), n_resamples=200
    )[0]
    assert auc.value == pytest.approx(roc_auc_score(y, probs[:, 1]) - 0.5)


def test_other_images_or_labels_are_not_paired():
    y = np.array([0, 1, 2, 0, 1, 2])
    a = _predictions(y, _model(y, 1.0, 1))
    b = a.copy()
    assert why_not_paired(a, b) is None
    b.loc[2, "true_label"] = "benign"
    assert "1 of its 6 test images or labels differ" in why_not_paired(a, b)
    assert "evaluated on 5 test images, this run on 6" in why_not_paired(a, a.iloc[:5])
    two = _predictions(y % 2, _model(y % 2, 1.0, 1, k=2), ("benign", "malignant"))
    assert "predicts other classes (benign, malignant)" in why_not_paired(a, two)


def _report(data_dir: str | None, dataset_hash: str | None) -> EvaluationReport:
    return EvaluationReport(n_samples=6, class_names=list(CLASSES), overall={},
                            data_dir=data_dir, dataset_hash=dataset_hash)  # fmt: skip


def test_evaluations_of_another_folder_with_the_same_file_names_are_not_paired():
    assert why_other_data(_report("/data/a", "h1"), _report("/data/a", "h1")) is None
    assert why_other_data(_report("/data/a", "h1"), _report("/data/b", "h2")) == (
        "it was evaluated on the test split of /data/b, this run on /data/a"
    )
    assert "changed between the two evaluations" in why_other_data(
        _report("/data/a", "h1"), _report("/data/a", "h2")
    )
    # the same files mounted elsewhere (the evaluator's /data, a laptop's path): one file list
    assert why_other_data(_report("/data/a", "h1"), _report("/mnt/a", "h1")) is None
    # evaluated before metrics.json said either: nothing is known to differ
    assert why_other_data(_report(None, None), _report("/data/b", None)) is None
    assert why_other_data(None, _report("/data/b", "h2")) is None


def test_a_rare_class_keeps_its_auc_interval():
    # 3 positives among 400 images: one unstratified resample in 20 holds none, which made the
    # whole AUC interval undefined; stratified, every resample has 3.
    y = np.zeros(400, dtype=int)
    y[:3] = 1
    classes = ("benign", "malignant")
    weak, strong = _model(y, 0.2, 1, k=2), _model(y, 3.0, 2, k=2)
    auc, _ = paired_differences(
        _predictions(y, weak, classes), _predictions(y, strong, classes), n_resamples=500
    )
    assert auc.value > 0
    assert auc.ci_low is not None and auc.ci_low <= auc.value <= auc.ci_high


def test_a_class_absent_from_the_test_set_is_left_out_of_the_macro_auc():
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])  # "normal" (class 2) has no test image
    a, b = _model(y, 1.0, 1), _model(y, 2.0, 2)
    auc, _ = paired_differences(_predictions(y, a), _predictions(y, b), n_resamples=200)
    expected = np.mean([roc_auc_score(y == c, b[:, c]) - roc_auc_score(y == c, a[:, c])
                        for c in (0, 1)])  # fmt: skip
    assert auc.value == pytest.approx(expected)
    assert auc.ci_low is not None


def test_a_single_image_has_no_interval():
    y = np.array([1])
    a = _predictions(y, _model(y, 1.0, 1))
    auc, accuracy = paired_differences(a, a.copy(), n_resamples=50)
    assert auc.value is None and auc.verdict("a", "b") == "undefined on these images"
    assert accuracy.ci_low is None
    assert accuracy.verdict("a", "b") == "too few test images for an interval"


def test_class_names_that_look_like_numbers_or_missing_values_are_kept():
    from dashboard.paired import read_predictions

    y = np.array([0, 1, 2, 0, 1, 2])
    classes = ("01", "02", "NA")
    frame = _predictions(y, _model(y, 2.0, 1), classes)
    table = read_predictions(frame.to_csv(index=False).encode())
    assert list(table["true_label"][:3]) == ["01", "02", "NA"]
    auc, _ = paired_differences(table, table.copy(), n_resamples=50)
    assert auc.value == 0 and auc.verdict("a", "b") == "no clear difference on these images"


def _accuracy_gap(images: int, weak_right: int, strong_right: int) -> Difference:
    """The paired accuracy difference of two runs on ``images`` images of class 0: ``weak``
    right on the first ``weak_right``, ``strong`` on the first ``strong_right`` (more), both
    wrong (class 1) on the others."""
    y = np.zeros(images, dtype=int)
    weak_probs, strong_probs = np.full((images, 3), 0.1), np.full((images, 3), 0.1)
    weak_probs[:, 1] = strong_probs[:, 1] = 0.8  # wrong unless set right below
    weak_probs[:weak_right] = strong_probs[:strong_right] = [0.8, 0.1, 0.1]
    weak, strong = _predictions(y, weak_probs), _predictions(y, strong_probs)
    return paired_differences(weak, strong, n_resamples=500)[1]


def test_an_accuracy_gap_carried_by_four_images_is_not_called_better():
    # 36 images: both right on 28, both wrong on 4, `strong` alone right on 4 (the dashboard
    # audit's case): the bootstrap interval excludes 0, but 4 against 0 is mid-p = 0.0625.
    accuracy = _accuracy_gap(36, 28, 32)
    assert accuracy.value == pytest.approx(4 / 36) and accuracy.ci_low > 0
    assert (accuracy.only_this, accuracy.only_other) == (0, 4)
    assert accuracy.p_value == pytest.approx(2 / 2**4 - 1 / 2**4)
    assert accuracy.verdict("weak", "strong").startswith("no clear difference on these images")
    assert "disagree on 4: 0 right only by weak, 4 only by strong" in accuracy.verdict(
        "weak", "strong"
    )


def test_a_verdict_against_its_interval_says_which_test_decides():
    # the four-image case above: the interval excludes 0, McNemar finds no clear difference
    gap = _accuracy_gap(36, 28, 32)
    assert gap.ci_low > 0
    said = gap.verdict("weak", "strong")
    assert "McNemar mid-p = 0.0625, which decides accuracy" in said
    assert "the bootstrap interval excludes 0 but is too narrow" in said


def test_five_images_against_none_are_a_difference_by_the_mid_p_test():
    # 60 images, `strong` alone right on 5: exact p = 2 / 2**5 = 0.0625 (conservative), mid-p
    # 0.03125: the test and the bootstrap interval agree
    gap = _accuracy_gap(60, 50, 55)
    assert (gap.only_this, gap.only_other) == (0, 5) and gap.ci_low > 0
    assert gap.p_value == pytest.approx(2 / 2**5 - 1 / 2**5)
    assert gap.verdict("weak", "strong") == "strong is better"


@pytest.mark.parametrize(
    "p, text",
    [(0.0498, "p = 0.0498"), (0.0501, "p = 0.0501"), (0.04996, "p = 0.04996"),
     (0.05004, "p = 0.05004"), (0.0004, "p < 0.001"), (0.001, "p = 0.001"),
     (0.0625, "p = 0.0625"), (0.52, "p = 0.52"), (1.0, "p = 1")],
)  # fmt: skip
def test_a_p_value_on_either_side_of_005_never_reads_005(p, text):
    assert p_text(p) == text


def test_the_general_module_does_not_import_the_served_decisions():
    tree = ast.parse(Path(paired.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "dashboard.paired_decision" not in imported
