"""What the evaluation's figures say in words: the decision rule each one counts."""

import numpy as np

from evaluator import plots
from runs import OperatingPoint

NAMES = ["benign", "malignant"]
POINT = OperatingPoint(
    positive_class="malignant", threshold=0.3142, target_sensitivity=0.9,
    val_sensitivity=0.9, val_specificity=0.5, chosen_on="validation",
)  # fmt: skip


def test_a_threshold_confusion_matrix_is_titled_with_the_served_threshold():
    fig = plots.confusion_matrix_figure(np.eye(2, dtype=int), NAMES, plots.threshold_rule(POINT))
    title = fig.get_suptitle()
    assert title == "Decided by threshold 0.3142 for 'malignant' (the served decision)"
    assert {ax.get_xlabel() for ax in fig.axes} == {"Decided label"}


def test_the_argmax_confusion_matrix_of_a_thresholded_run_says_it_is_not_served():
    fig = plots.confusion_matrix_figure(np.eye(2, dtype=int), NAMES, plots.argmax_rule(False))
    assert fig.get_suptitle() == (
        "Decided by argmax (the most probable class), not the served decision"
    )
    assert {ax.get_xlabel() for ax in fig.axes} == {"Predicted label (argmax)"}
