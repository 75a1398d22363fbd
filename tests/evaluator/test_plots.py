"""What the evaluation's figures say and show: the decision rule each one counts, the ROC curve
of the positive class and the operating point on it."""

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from common import contrast_ratio
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


# Label 0 positive (as BreastMNIST's malignant): decided malignant at 0.5 are images 0, 1 (right)
# and 3 (wrong), so the test split's sensitivity is 2/3 and its false positive rate 1/7.
ROC_NAMES = ["malignant", "benign"]
ROC_Y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
P0 = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1])
ROC_PROBS = np.stack([P0, 1 - P0], axis=1)
ROC_POINT = POINT.model_copy(update={"positive_class": "malignant", "threshold": 0.5})


def _roc_lines(point: OperatingPoint | None) -> dict:
    fig = plots.roc_curves_figure(ROC_Y, ROC_PROBS, ROC_NAMES, [0.8, 0.8], point)
    return {line.get_label(): line for line in fig.axes[0].get_lines()}


def test_a_two_class_roc_plot_draws_the_positive_classs_curve_alone():
    curves = [label for label in _roc_lines(ROC_POINT) if "AUC" in label]
    assert curves == ["malignant (AUC 0.8)"]


def test_the_plots_write_figures_as_the_dashboards_tables_do():
    # 4 significant digits, half up from the shortest decimal: the tables' 0.8147, not "0.815";
    # 0.06759 (the table's ECE), not "0.068"; a threshold of 0.24369 the tables' 0.2437.
    point = ROC_POINT.model_copy(update={"threshold": 0.24369})
    fig = plots.roc_curves_figure(ROC_Y, ROC_PROBS, ROC_NAMES, [0.81465, 0.81465], point)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "malignant (AUC 0.8147)" in labels
    assert "test at threshold 0.2437: sens. 0.6667, spec. 0.8571" in labels
    title = plots.calibration_figure(P0, ROC_Y == 0, 15, 0.067585).axes[0].get_title()
    assert title == "Reliability diagram (ECE 0.06759)"


def test_the_roc_plot_marks_the_test_split_at_the_threshold():
    marked = [line for label, line in _roc_lines(ROC_POINT).items() if "threshold" in label]
    assert len(marked) == 1
    assert marked[0].get_xdata()[0] == pytest.approx(1 / 7)
    assert marked[0].get_ydata()[0] == pytest.approx(2 / 3)


def test_a_two_class_roc_plot_without_a_threshold_names_no_positive_class():
    fig = plots.roc_curves_figure(ROC_Y, ROC_PROBS, ROC_NAMES, [0.8, 0.8], None)
    assert fig.axes[0].get_title() == "ROC curve of 'benign' (label 1; no decision threshold)"


def _titles(fig) -> str:
    return " ".join([fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)])


@pytest.mark.parametrize(
    "draw",
    [
        lambda tta: plots.confusion_matrix_figure(np.eye(2, dtype=int), NAMES, tta=tta),
        lambda tta: plots.roc_curves_figure(ROC_Y, ROC_PROBS, ROC_NAMES, [0.8, 0.8], tta=tta),
        lambda tta: plots.calibration_figure(P0, ROC_Y == 0, 15, 0.1, tta=tta),
    ],
    ids=["confusion_matrix", "roc_curves", "calibration"],
)
def test_a_figure_of_flip_averaged_probabilities_says_so(draw):
    assert "tta=horizontal" in _titles(draw("horizontal"))
    assert "tta" not in _titles(draw("none"))


def test_the_roc_curves_of_several_classes_differ_by_more_than_colour():
    """Told apart under colour blindness or in greyscale (WCAG 1.4.1): by line style and marker."""
    y = np.repeat(np.arange(4), 5)
    probs = np.random.default_rng(0).dirichlet(np.ones(4), len(y))
    fig = plots.roc_curves_figure(y, probs, ["a", "b", "c", "d"], [0.5] * 4)
    lines = fig.axes[0].get_lines()
    styles = {(str(line.get_linestyle()), line.get_marker()) for line in lines}
    assert len(styles) == len(lines) == 5  # four classes and the chance line


def test_every_number_of_a_confusion_matrix_contrasts_4_5_to_1_with_its_cell():
    """WCAG 1.4.3: seaborn's own choice wrote white on mid-blue cells at 2.4:1."""
    fig = plots.confusion_matrix_figure(np.arange(36).reshape(6, 6), list("abcdef"))
    ratios = []
    for ax in fig.axes:
        mesh = ax.collections[0]
        mesh.update_scalarmappable()
        cells = mesh.get_facecolors().reshape(6, 6, 4)  # row-major, as drawn
        for text in ax.texts:
            x, y = text.get_position()
            cell = cells[int(y), int(x)]
            ratios.append(contrast_ratio(to_rgba(text.get_color()), cell))
    assert len(ratios) == 2 * 36
    assert min(ratios) >= 4.5


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.roc_curves_figure(ROC_Y, ROC_PROBS, ROC_NAMES, [0.8, 0.8], ROC_POINT),
        lambda: plots.calibration_figure(P0, ROC_Y == 0, 15, 0.1),
    ],
    ids=["roc_curves", "calibration"],
)
def test_no_legend_text_is_under_9_points(draw):
    """The legends were "small" (8.3 pt): about 5 px high where the dashboard shrinks them."""
    legends = [ax.get_legend() for ax in draw().axes if ax.get_legend()]
    assert min(t.get_fontsize() for legend in legends for t in legend.get_texts()) >= 9
