"""PNG figures of the explanations, drawn with matplotlib's object API (no pyplot, no display).

Every function returns PNG bytes so that the caller decides where (and how atomically) to write.
"""

import textwrap

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from common import CATEGORICAL, curve_style, png_bytes
from explainer.attributions import BY_NAME, METHOD_TABLE, is_signed, title

# The bars of different methods differ by hatch as well as colour, as curves by line style and
# marker (common.curve_style): WCAG 1.4.1, colour blindness, greyscale prints.
HATCHES = ["", "//", "..", "xx", "\\\\", "oo"]


# The smallest text of a figure, in points: still legible where the dashboard shrinks a figure
# to its column (at 7-8 pt, panel titles came out about 5 px high there).
SMALL = 9


def _show_image(ax, image: np.ndarray, alpha: float = 1.0) -> None:
    """``image``: ``H×W×C`` floats in ``[0, 1]``, C = 1 or 3."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, alpha=alpha)
    else:
        ax.imshow(np.clip(image, 0, 1), alpha=alpha)
    ax.set_xticks([])
    ax.set_yticks([])


# Each map is drawn on its own scale, stated on the figure: maps of different images, methods or
# models are compared by these numbers, not by their colours.
SCALE_NOTE = (
    "each map on its own scale (in its title): signed maps ±99th percentile of |value|, "
    "beyond it clipped; "
    + ", ".join(m.title for m in METHOD_TABLE if not m.signed)
    + " 0 to its maximum"
)


def _scale_note(fig: Figure) -> None:
    """``SCALE_NOTE`` under the figure, wrapped to its width (about 7 px a character at 9 pt)."""
    note = textwrap.fill(SCALE_NOTE, width=int(fig.get_figwidth() * fig.dpi / 7))
    fig.text(0.5, 0.0, note, ha="center", va="top", fontsize=SMALL, color="dimgray")


def _overlay(ax, image: np.ndarray, heat: np.ndarray, signed: bool) -> str:
    """Draw ``heat`` (``H×W``) over a faded grey version of ``image``; return its scale as
    text (``±0.012``, ``0–0.13``)."""
    grey = image.mean(axis=-1, keepdims=True)
    _show_image(ax, grey, alpha=0.6)
    if signed:
        limit = float(np.percentile(np.abs(heat), 99)) or 1.0
        ax.imshow(heat, cmap="bwr", vmin=-limit, vmax=limit, alpha=0.6)
        return f"±{limit:.2g}"
    top = float(heat.max()) or 1.0
    ax.imshow(heat, cmap=CAM_CMAP, vmin=0, vmax=top, alpha=0.45)
    return f"0–{top:.2g}"


# Viridis, not jet: its lightness rises steadily from low to high, so the order of the colours
# survives colour blindness and greyscale (jet's does not), and every level of it keeps a hue
# (purple, teal, yellow) that stands out on the grey image below, where cividis's greyish middle
# and inferno's black low end blend into an ultrasound's greys.
CAM_CMAP = "viridis"
CAM_TICKS = ["low", "high"]
SIGNED_TICKS = ["negative", "0", "positive"]


def _colour_key(bar: Colorbar, signed: bool, cam_ticks: list[str] = CAM_TICKS) -> None:
    """Label a colour bar with what its colours mean: low to high relevance (Grad-CAM), or
    negative, 0, positive (signed maps, centred at 0); the numbers are in the maps' titles."""
    low, high = bar.mappable.get_clim()
    if signed:
        bar.set_ticks([low, 0, high], labels=SIGNED_TICKS)
        bar.set_label("lowers ↔ raises the class", fontsize=SMALL)
    else:
        bar.set_ticks([low, high], labels=cam_ticks)
        bar.set_label("relevance", fontsize=SMALL)
    bar.ax.tick_params(labelsize=SMALL)
    ends = bar.ax.get_xticklabels()  # the end labels inside the bar's width, clear of the next
    ends[0].set_horizontalalignment("left")
    ends[-1].set_horizontalalignment("right")


def _map_colour_bar(ax: Axes, signed: bool) -> None:
    """A horizontal colour key under the overlay drawn on ``ax`` (its last image)."""
    cax = ax.inset_axes([0.05, -0.1, 0.9, 0.06])
    _colour_key(ax.figure.colorbar(ax.images[-1], cax=cax, orientation="horizontal"), signed)


def sample_panel(
    image: np.ndarray,
    maps: dict[str, np.ndarray],
    true_label: str,
    decided: str,
    wrong: bool,
    background: int | None = None,
) -> bytes:
    """One row: the image, then one overlay per method, each with its scale.

    Args:
        image: ``H×W×C`` floats in ``[0, 1]``.
        maps: Method name → per-pixel importance ``H×W`` (signed where ``Method.signed``).
        decided: What the model decided, and how (``decision_label``): the explained class.
        wrong: Whether that decision is not ``true_label``.
        background: How many test images a method with ``Method.uses_background`` (SHAP)
            compares the image with (its title says so: a red area where the image is darker
            than they are there is not a finding in it).
    """
    aspect = image.shape[0] / image.shape[1]  # rows as tall as the images, not a fixed height
    fig = Figure(figsize=(2.6 * (1 + len(maps)), 2.6 * aspect + 0.9))
    axes = fig.subplots(1, 1 + len(maps), squeeze=False)[0]
    _show_image(axes[0], image)
    mark = "✗ misclassified" if wrong else "✓ correct"  # said in words, not by the red alone
    axes[0].set_title(
        f"{mark}, true: {true_label}\n{decided}",
        fontsize=SMALL,
        color="crimson" if wrong else "black",
    )
    for ax, (method, heat) in zip(axes[1:], maps.items(), strict=True):
        scale = _overlay(ax, image, heat, signed=is_signed(method))
        _map_colour_bar(ax, signed=is_signed(method))
        ax.set_title(map_title(method, scale, background), fontsize=SMALL)
    _scale_note(fig)
    return png_bytes(fig)


def map_title(method: str, scale: str, background: int | None = None) -> str:
    """``SHAP\n(±0.012, vs 16 test images)``: the method, the map's scale and, for a method
    that compares with background images (``Method.uses_background``), how many."""
    if background and method in BY_NAME and BY_NAME[method].uses_background:
        scale += f", vs {background} test images"
    return f"{title(method)}\n({scale})"


def decision_label(probs: np.ndarray, target: int, class_names: list[str],
                   point: dict | None) -> str:  # fmt: skip
    """``predicted: b (0.91)`` (argmax), or for a two-class run decided by its threshold
    ``decided: b (P(b) 0.14 < threshold 0.863)``: what was explained, and why."""
    if point is None:
        return f"predicted: {class_names[target]} ({probs[target]:.2f})"
    positive = point["positive_class"]
    p, threshold = float(probs[class_names.index(positive)]), float(point["threshold"])
    side = "≥" if class_names[target] == positive else "<"  # the decision made (decided_labels)
    why = f"(P({positive}) {p:.2f} {side} threshold {threshold:.3g})"
    return f"decided: {class_names[target]}\n{why}"


def cam_grid(
    images: np.ndarray, cams: np.ndarray, captions: list[str], wrong: list[bool], columns: int = 4
) -> bytes:
    """Grad-CAM overlays of several images in a grid, one caption each (red when misclassified).

    Args:
        images: ``N×H×W×C`` floats in ``[0, 1]``; cams: ``N×H×W`` non-negative maps.
    """
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    aspect = images.shape[1] / images.shape[2]
    # Columns wider than the maps, with gaps: captions at 9 pt are up to about 2.6 in wide.
    fig = Figure(figsize=(2.8 * columns, (2.4 * aspect + 1.0) * rows + 0.6), layout="constrained")
    fig.get_layout_engine().set(wspace=0.1, hspace=0.08)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(images) :]:
        ax.axis("off")
    for ax, image, cam, caption, bad in zip(axes, images, cams, captions, wrong, strict=False):
        scale = _overlay(ax, image, cam, signed=False)
        colour = "crimson" if bad else "black"
        ax.set_title(f"{caption}\nGrad-CAM {scale}", fontsize=SMALL, color=colour)
    # One key for the grid: every map runs from 0 to its own maximum.
    key = ScalarMappable(Normalize(0, 1), CAM_CMAP)
    shrink = 0.5 if columns > 2 else 0.9
    bar = fig.colorbar(key, ax=axes.tolist(), orientation="horizontal", shrink=shrink, aspect=40)
    _colour_key(bar, signed=False, cam_ticks=["0: low", "its maximum: high"])
    _scale_note(fig)
    return png_bytes(fig)


EXPLAINED_CLASS = "the run's decision, by argmax or by its threshold"


def shap_summary_figure(
    values: np.ndarray,
    channel_names: list[str],
    labels: list[str],
    explained_class: str = EXPLAINED_CLASS,
) -> Figure:
    """SHAP across the samples: mean |SHAP| per pixel, and each sample's mass per channel.

    Args:
        values: SHAP values ``N×C×H×W``.
        channel_names: Name of each input channel.
        labels: The explained class of each sample (the class its values explain).
        explained_class: How that class was chosen, in the title (``index.json``'s
            ``settings.explained_class``: ``predicted``, ``decided by the threshold``).
    """
    # Constrained layout keeps the right panel's y label clear of the colour bar's ticks.
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
    mean_abs = np.abs(values).sum(axis=1).mean(axis=0)
    image = left.imshow(mean_abs, cmap="magma")
    fig.colorbar(image, ax=left, shrink=0.8)
    left.set_title(f"mean |SHAP| per pixel (n={len(values)})", fontsize=10)
    left.set_xticks([])
    left.set_yticks([])
    rows = [
        {"channel": channel_names[c], "sign": sign, "mass": float(part.sum()), "label": labels[i]}
        for i in range(len(values))
        for c in range(values.shape[1])
        for sign, part in (
            ("positive", np.clip(values[i, c], 0, None)),
            ("negative", np.clip(values[i, c], None, 0)),
        )
    ]
    frame = pd.DataFrame(rows)
    sns.boxplot(
        frame,
        x="channel",
        y="mass",
        hue="sign",
        ax=right,
        palette=["#d62728", "#1f77b4"],
        showfliers=False,
    )
    sns.stripplot(
        frame,
        x="channel",
        y="mass",
        hue="sign",
        dodge=True,
        ax=right,
        palette="dark:k",
        size=3,
        legend=False,
    )
    right.axhline(0, color="grey", lw=0.8)
    right.set_title(
        f"SHAP mass per sample and channel\n(explained class: {explained_class})", fontsize=10
    )
    return fig


def shap_summary(
    values: np.ndarray,
    channel_names: list[str],
    labels: list[str],
    explained_class: str = EXPLAINED_CLASS,
) -> bytes:
    """``shap_summary_figure`` as PNG bytes."""
    return png_bytes(shap_summary_figure(values, channel_names, labels, explained_class))


def deletion_plot(report: dict) -> bytes:
    """The mean deletion curve of each method and of the random order, AUC in the legend."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    fractions = report["fractions"]
    for i, (method, entry) in enumerate(report["methods"].items()):
        ax.plot(
            fractions,
            entry["curve"],
            label=f"{title(method)} (AUC {entry['auc']:.3f})",
            **curve_style(i),
        )
    ax.plot(
        fractions,
        report["random"]["curve"],
        "k--",
        label=f"random order (AUC {report['random']['auc']:.3f})",
    )
    patch = report.get("patch", 1)
    ax.set_xlabel(f"fraction of {patch}×{patch} regions removed (most important first)")
    ax.set_ylabel("probability of the explained class")
    ax.set_ylim(0, 1.02)
    ax.set_title("Deletion curves: lower area = more faithful map", fontsize=10)
    ax.legend(fontsize=SMALL)
    return png_bytes(fig)


def channel_plot(importance: dict[str, dict[str, float]]) -> bytes:
    """Bar chart of the share of attribution mass per input channel, one hue per method."""
    frame = pd.DataFrame(
        [
            {"method": title(m), "channel": c, "share": s}
            for m, shares in importance.items()
            for c, s in shares.items()
        ]
    )
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    methods = list(dict.fromkeys(frame["method"]))
    colours = list(CATEGORICAL[: len(methods)])
    sns.barplot(
        frame, x="channel", y="share", hue="method", hue_order=methods, ax=ax, palette=colours
    )
    for i, bars in enumerate(ax.containers):
        for bar in bars:  # each method also by its hatch, as the curves by their line style
            bar.set(hatch=HATCHES[i % len(HATCHES)], edgecolor="black")
    handles = [bars.patches[0] for bars in ax.containers]  # with their hatches
    ax.legend(handles, methods, title="method", loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_ylabel("share of |attribution|")
    ax.set_title("Channel importance over the samples", fontsize=10)
    return png_bytes(fig)
