"""Text alternatives (``alt``) of the dashboard's plots and charts, built from the data they draw.

A screen reader announces these instead of an image's pixels or Vega's dump of axis ticks, so
each says what the figure shows in one or two sentences of figures, named and written as the
tables beside them name and write them (``dashboard.readable``).
"""

from pathlib import PurePosixPath

import pandas as pd

from dashboard import readable
from runs import contract, schemas


def number(value: float | None, digits: int = 4) -> str:
    """``0.9781`` (``readable.figure``, as the tables write it); ``–`` for a missing value (None
    or NaN)."""
    return readable.figure(None if value is None or pd.isna(value) else value, digits)


def interval(value: float | None, low: float | None, high: float | None) -> str:
    """``0.85 (0.8 to 0.9)``: a value and its 95 % interval (bounds to ``readable.BOUND_DIGITS``,
    as the leaderboard writes them); the value alone without one."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return number(value)
    bounds = (number(b, readable.BOUND_DIGITS) for b in (low, high))
    return f"{number(value)} ({' to '.join(bounds)})"


def _estimate(found: object) -> float | None:
    if isinstance(found, schemas.Estimate):
        return found.value
    return float(found) if isinstance(found, int | float) else None


def confusion_matrix(
    classes: list[str], matrix: list[list[int]], columns: str = "predicted"
) -> str:
    """``Confusion matrix, rows true class, columns predicted: true melanoma: 5 melanoma, ...``."""
    rows = "; ".join(
        f"true {true}: " + ", ".join(f"{n} {c}" for n, c in zip(row, classes, strict=True))
        for true, row in zip(classes, matrix, strict=True)
    )
    return f"Confusion matrix, rows true class, columns {columns}: {rows}."


def roc_curves(report: schemas.EvaluationReport) -> str:
    """``ROC curves: keratosis AUC 0.978, melanoma 0.947, nevus 0.857.``"""
    aucs = [
        f"{name} {number(_estimate(report.per_class.get(name, {}).get('roc_auc')))}"
        for name in report.class_names
    ]
    return f"ROC curves, one per class against the rest: AUC {', '.join(aucs)}."


def calibration(report: schemas.EvaluationReport) -> str:
    """The reliability diagram, summed up by its expected calibration error."""
    ece = number(_estimate(report.overall.get("ece")))
    return (
        f"Calibration (reliability diagram) on {report.n_samples} test images: "
        f"expected calibration error {ece}."
    )


def evaluation_plot(name: str, title: str, report: schemas.EvaluationReport | None) -> str:
    """The ``alt`` of one of the evaluation's plots (``name`` as in ``runs.contract``)."""
    if report is not None:
        if name == contract.CONFUSION_MATRIX_PNG and report.confusion_matrix:
            return confusion_matrix(report.class_names, report.confusion_matrix)
        if name == contract.ROC_CURVES_PNG and report.per_class:
            return roc_curves(report)
        if name == contract.CALIBRATION_PNG and "ece" in report.overall:
            return calibration(report)
    return f"{title} plot of this evaluation (its metrics.json cannot be read to describe it)."


def misclassified_image(path: str) -> str:
    """``Misclassified test image 12: true melanoma, taken for nevus`` from the evaluator's
    ``<rank>_<index>_<true>_as_<decided>.png``; the file name when it is not written so."""
    stem = PurePosixPath(path).stem
    parts = stem.split("_", 2)
    if len(parts) == 3 and "_as_" in parts[2]:
        true, decided = parts[2].split("_as_", 1)
        return f"Misclassified test image {parts[1]}: true {true}, taken for {decided}."
    return f"Misclassified test image {stem}."


# Plots that the Evaluation, Explanations and Visualizations tabs show with their data in words.
DESCRIBED_ON_TABS = {
    contract.CONFUSION_MATRIX_PNG: "Evaluation",
    contract.ROC_CURVES_PNG: "Evaluation",
    contract.CALIBRATION_PNG: "Evaluation",
    contract.GRADCAM_PNG: "Visualizations",
    contract.CHANNEL_IMPORTANCE_PNG: "Explanations",
    contract.DELETION_CURVES_PNG: "Explanations",
}


def artifact_image(path: str, size: tuple[int, int] | None) -> str:
    """The ``alt`` of an image file shown by the Artifacts tab: what its name says it is, its
    size in pixels, and the tab that describes it in words where one does."""
    name = PurePosixPath(path).name
    if "_as_" in name:
        what = misclassified_image(path).rstrip(".") + f" (file {path})"
    else:
        what = f"Image file {path} of this run"
    if size is not None:
        what += f", {size[0]}×{size[1]} pixels"
    tab = DESCRIBED_ON_TABS.get(name)
    return f"{what}." + (f" The {tab} tab shows what it draws in words." if tab else "")


def intervals(table: pd.DataFrame) -> str:
    """``Values with 95% intervals: test accuracy 0.85 (0.8 to 0.9); ...`` of the evaluator's
    figures in ``table`` (``metric``: ``roc_auc_macro``, as ``card_tables.evaluation_table``
    names it)."""
    items = [
        f"{readable.evaluated(row.metric)} {interval(row.value, row.ci_low, row.ci_high)}"
        for row in table.itertuples()
    ]
    return f"Values with 95% intervals: {'; '.join(items)}."


def counts(
    frame: pd.DataFrame, group: str, item: str, value: str, what: str, shares: bool = False
) -> str:
    """``Class distribution: train: melanoma 50, nevus 60; test: ...`` of a grouped bar chart
    (``shares``: the values are fractions, said as percentages)."""
    said = (lambda v: f"{v:.0%}") if shares else (lambda v: f"{v:g}")
    parts = [
        f"{name}: " + ", ".join(f"{i} {said(v)}" for i, v in zip(g[item], g[value], strict=True))
        for name, g in frame.groupby(group, sort=False)
    ]
    return f"{what}: {'; '.join(parts)}."


def history(frame: pd.DataFrame) -> str:
    """The last value of each metric of each run, and over how many steps it was logged."""
    parts = []
    for (key, run), rows in frame.groupby(["key", "run"], sort=False):
        last = rows.iloc[-1]["value"]
        parts.append(
            f"{readable.label(key)} of {run}: last {number(last)} after {len(rows)} values"
        )
    return f"Metric history, one panel per metric: {'; '.join(parts)}."


def embedding(frame: pd.DataFrame, method: str, coloured_by: str) -> str:
    """``t-SNE map of 90 test images, coloured by ...: keratosis 30 (2 misclassified), ...``."""
    per_class = [
        f"{true} {len(rows)} ({(rows['outcome'] == 'misclassified').sum()} misclassified)"
        for true, rows in frame.groupby("true", sort=True)
    ]
    return (
        f"{method} map of the model's features of {len(frame)} test images, coloured by "
        f"{coloured_by.lower()}, shaped by outcome; per true class: {', '.join(per_class)}."
    )


def gradcam(index: schemas.ExplanationIndex | None) -> str:
    """What the Grad-CAM overlays show, sample by sample when the explanation lists them."""
    head = "Grad-CAM overlays of the predicted class, misclassified samples marked ✗"
    if index is None or not index.samples:
        return f"{head}."
    samples = "; ".join(
        f"test image {s.test_index}: true {s.true_label}, predicted {s.predicted_label}"
        for s in index.samples
    )
    return f"{head}: {samples}."
