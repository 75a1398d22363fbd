"""Evaluation figures: confusion matrices, ROC curves, a reliability diagram.

Figures are drawn with matplotlib's object API (no pyplot state); each ``*_figure`` function
returns the figure, which ``common.png_bytes`` renders as the bytes the evaluation folder holds.
Figures in titles and legends are written by ``common.figure`` (4 significant digits), as the
dashboard's tables write them: a legend's "AUC 0.8147" is the table's.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from common import contrast_ratio, curve_style, figure
from runs import OperatingPoint, decided_labels

ARGMAX_RULE = "argmax (the most probable class)"


def tta_note(tta: str) -> str:
    """A title's last line saying the probabilities were averaged over flips; "" without TTA."""
    if tta == "none":
        return ""
    return f"\ntest-time augmentation: mean over the image and its flips (tta={tta})"


def threshold_rule(point: OperatingPoint) -> str:
    """``threshold 0.3142 for 'malignant' (the served decision)``: the rule in a title."""
    return f"threshold {figure(point.threshold)} for {point.positive_class!r} (the served decision)"


def argmax_rule(served: bool) -> str:
    """The argmax rule in a title; ``served=False`` for a run served by its threshold."""
    return ARGMAX_RULE if served else f"{ARGMAX_RULE}, not the served decision"


def _contrast_annotations(ax: Axes, data: np.ndarray) -> None:
    """Write each number of ``data``'s seaborn heatmap on ``ax`` in black or white, whichever
    contrasts more with its cell (seaborn's own choice left white on mid-blue cells at 2.4:1,
    under WCAG's 4.5:1)."""
    mesh = ax.collections[0]
    for text in ax.texts:
        x, y = text.get_position()  # the centre of cell (row int(y), column int(x))
        cell = mesh.cmap(mesh.norm(data[int(y), int(x)]))
        black = contrast_ratio((0, 0, 0), cell) >= contrast_ratio((1, 1, 1), cell)
        text.set_color("black" if black else "white")


def confusion_matrix_figure(
    cm: np.ndarray, class_names: list[str], rule: str = ARGMAX_RULE, tta: str = "none"
) -> Figure:
    """Two seaborn heatmaps side by side, counts and rows normalized to recall per class, of
    the decisions by ``rule`` (named in the title and the x axis) on probabilities made with
    test-time augmentation ``tta`` (named in the title unless none)."""
    cm = np.asarray(cm)
    rows = cm.sum(1, keepdims=True)
    normalized = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    size = max(4.0, 0.6 * len(class_names) + 2.5)
    fig = Figure(figsize=(2 * size + 1, size + 0.4), layout="constrained")
    axes = fig.subplots(1, 2)
    fig.suptitle(f"Decided by {rule}{tta_note(tta)}")
    label = "Predicted label (argmax)" if rule.startswith(ARGMAX_RULE) else "Decided label"
    for ax, data, fmt, title in (
        (axes[0], cm, "d", "Counts"),
        (axes[1], normalized, ".2f", "Normalized by true class"),
    ):
        sns.heatmap(
            data,
            annot=True,
            fmt=fmt,
            cmap="Blues",
            xticklabels=class_names,
            yticklabels=class_names,
            square=True,
            cbar=False,
            ax=ax,
        )
        _contrast_annotations(ax, data)
        ax.set(title=title, xlabel=label, ylabel="True label")
    return fig


def roc_curves_figure(
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    aucs: list[float | None],
    point: OperatingPoint | None = None,
    tta: str = "none",
) -> Figure:
    """ROC curves with their AUC in the legend: for two classes the positive class's curve
    alone (the other is its mirror image, with the same AUC), the positive class being
    ``point``'s, else the second; for more, the one-vs-rest curve of every class present in
    ``y_true``. With an operating ``point``, the test split's rate at its threshold is marked;
    the title names the test-time augmentation ``tta`` unless none.
    """
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    binary = len(class_names) == 2
    positive = class_names.index(point.positive_class) if point is not None else 1
    for c, name in enumerate(class_names):
        if binary and c != positive:
            continue
        truth = y_true == c
        if aucs[c] is None or truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, probs[:, c])
        ax.plot(fpr, tpr, label=f"{name} (AUC {figure(aucs[c])})", **curve_style(c))
    truth = y_true == positive
    if point is not None and truth.any() and not truth.all():
        decided = decided_labels(point, probs, class_names) == positive
        tpr, fpr = decided[truth].mean(), decided[~truth].mean()
        ax.plot(
            [fpr], [tpr], "o", color="crimson", markersize=8,
            label=f"test at threshold {figure(point.threshold)}: sens. {figure(tpr)}, "
            f"spec. {figure(1 - fpr)}",
        )  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="chance")
    if binary and point is not None:
        title = f"ROC curve, {class_names[positive]!r} as the positive class"
    elif binary:  # no threshold was chosen: no class was made the positive one
        title = f"ROC curve of {class_names[positive]!r} (label 1; no decision threshold)"
    else:
        title = "ROC curves, one vs rest"
    ax.set(
        xlabel="False positive rate (1 - specificity)",
        ylabel="True positive rate (sensitivity)",
        title=title + tta_note(tta),
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="lower right", fontsize=9)
    return fig


def calibration_figure(
    confidence: np.ndarray, correct: np.ndarray, bins: int, ece: float, tta: str = "none"
) -> Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal, counts below; the
    title names the test-time augmentation ``tta`` unless none."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=correct.astype(float), minlength=bins)
    accuracy = np.divide(hits, counts, out=np.full(bins, np.nan), where=counts > 0)
    centers = (edges[:-1] + edges[1:]) / 2
    fig = Figure(figsize=(5.5, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centers, np.nan_to_num(accuracy), width=1 / bins, edgecolor="black", label="accuracy")
    top.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfect calibration")
    title = f"Reliability diagram (ECE {figure(ece)}){tta_note(tta)}"
    top.set(ylabel="Accuracy", title=title, ylim=(0, 1))
    top.legend(loc="upper left", fontsize=9)
    bottom.bar(centers, counts, width=1 / bins, color="grey", edgecolor="black")
    bottom.set(xlabel="Confidence (top-class probability)", ylabel="Samples", xlim=(0, 1))
    return fig
