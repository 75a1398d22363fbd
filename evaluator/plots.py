"""Evaluation figures as PNG bytes: confusion matrices, ROC curves, a reliability diagram."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

DPI = 100


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def confusion_matrix_png(cm: np.ndarray, class_names: list[str]) -> bytes:
    """Two seaborn heatmaps side by side: counts, and rows normalized to recall per class."""
    cm = np.asarray(cm)
    rows = cm.sum(1, keepdims=True)
    normalized = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    size = max(4.0, 0.6 * len(class_names) + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
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
        ax.set(title=title, xlabel="Predicted label", ylabel="True label")
    return _png(fig)


def roc_curves_png(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str], aucs: list[float | None]
) -> bytes:
    """One-vs-rest ROC curve of every class present in ``y_true``, AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    palette = sns.color_palette(n_colors=len(class_names))
    for c, name in enumerate(class_names):
        positive = y_true == c
        if aucs[c] is None or positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, c])
        ax.plot(fpr, tpr, color=palette[c], label=f"{name} (AUC {aucs[c]:.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="chance")
    ax.set(
        xlabel="False positive rate (1 - specificity)",
        ylabel="True positive rate (sensitivity)",
        title="ROC curves, one vs rest",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def calibration_png(confidence: np.ndarray, correct: np.ndarray, bins: int, ece: float) -> bytes:
    """Reliability diagram: accuracy per confidence bin against the diagonal, counts below."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=correct.astype(float), minlength=bins)
    accuracy = np.divide(hits, counts, out=np.full(bins, np.nan), where=counts > 0)
    centers = (edges[:-1] + edges[1:]) / 2
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.bar(centers, np.nan_to_num(accuracy), width=1 / bins, edgecolor="black", label="accuracy")
    top.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfect calibration")
    top.set(ylabel="Accuracy", title=f"Reliability diagram (ECE {ece:.3f})", ylim=(0, 1))
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(centers, counts, width=1 / bins, color="grey", edgecolor="black")
    bottom.set(xlabel="Confidence (top-class probability)", ylabel="Samples", xlim=(0, 1))
    return _png(fig)
