"""The files of ``evaluation/`` and the flat ``eval_*`` metrics logged to the run."""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from common import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    metric_keys,
    png_bytes,
)
from evaluator import plots
from runs import OperatingPoint, contract, decided_labels, flagged, schemas

if TYPE_CHECKING:
    from dataloader import ImageSet

TOP_WRONG = 5
CONFUSION_MATRIX_THRESHOLD_PNG = "confusion_matrix_threshold.png"
"""Two-class runs with an operating point: the confusion matrix of the threshold's decision (the
served one); ``confusion_matrix.png`` is always the argmax's."""


def flat_metrics(report: dict) -> dict[str, float]:
    """The ``eval_*`` metrics (values and interval bounds) of a ``compute_metrics`` report.

    Keys as ``common.metric_keys`` names them: overall metrics ``eval_<name>`` (``eval_accuracy``,
    ``eval_ece``...), per-class ones ``eval_<name>_<class>``, each with its interval bounds; at
    the validation-chosen threshold of a two-class run ``eval_threshold`` and
    ``eval_thr_{sensitivity,specificity}_<class>``; of a model with the out-of-distribution check
    (the report's ``out_of_distribution``), the share of test images it flags ``eval_ood_rate``
    (Wilson bounds) and the share it expects ``eval_ood_expected_rate``: none at all for a model
    without the check (not 0: nothing was checked). Undefined metrics (value None) are left out.
    """
    flat: dict[str, float] = {}

    def add(key: str, est: dict) -> None:
        if est.get("value") is None:
            return
        flat[key] = est["value"]
        for bound in metric_keys.BOUNDS:
            if est.get(bound) is not None:
                flat[metric_keys.bound_key(key, bound)] = est[bound]

    classes = report["class_names"]
    for name, est in report["overall"].items():
        add(metric_keys.eval_key(name), est)
    for cls, values in report["per_class"].items():
        for name, est in values.items():
            if isinstance(est, dict):
                add(metric_keys.eval_key(name, cls, among=classes), est)
    threshold = report.get("operating_points", {}).get("threshold")
    if threshold is not None:
        flat[metric_keys.eval_key("threshold")] = float(threshold["threshold"])
        for cls, values in threshold["per_class"].items():
            for name, est in values.items():
                add(metric_keys.eval_key(name, cls, at_threshold=True, among=classes), est)
    ood = report.get("out_of_distribution")
    if ood:
        add(metric_keys.eval_key(metric_keys.OOD_RATE), ood["rate"])
        flat[metric_keys.eval_key(metric_keys.OOD_EXPECTED_RATE)] = float(ood["expected_rate"])
    return flat


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV whose cells open in a spreadsheet as text, never as a formula
    (``runs.contract.spreadsheet_safe``; readers undo it with ``as_written``). Its column names
    are the evaluator's own (``prob_<class>``)."""
    text = frame.select_dtypes(exclude="number").columns  # names; numbers are never formulas
    safe = frame.assign(**{c: frame[c].map(contract.spreadsheet_safe) for c in text})
    return safe.to_csv(index=False)


def write_artifacts(
    out: Path,
    report: dict,
    y: np.ndarray,
    probs: np.ndarray,
    test: "ImageSet",
    ood: np.ndarray | None = None,
) -> None:
    """Write every file of ``evaluation/`` into the folder ``out``.

    Args:
        out: An empty folder.
        report: The ``compute_metrics`` report (written as ``metrics.json``).
        y: True labels of the test images.
        probs: Predicted class probabilities, ``N×K``.
        test: The test split (images for the misclassified PNGs, file names for the CSVs).
        ood: The images' out-of-distribution scores (models with the check; None: without),
            ``predictions.csv``'s ``ood_score`` and ``out_of_distribution`` columns.
    """
    names = report["class_names"]
    pred = probs.argmax(1)
    files = test.files or [""] * len(y)
    table = pd.DataFrame(
        {
            "index": np.arange(len(y)),
            "file": files,
            "true_label": [names[i] for i in y],
            "predicted_label": [names[i] for i in pred],
        }
    )
    point = report.get("operating_points", {}).get("threshold")
    rule = None if point is None else OperatingPoint.model_validate(point)
    served = pred  # the class each image is served as: the argmax, or the threshold's decision
    if rule is not None:  # what the served model's `decision` says for each image
        served = decided_labels(rule, probs, names)
        table["decision"] = [names[i] for i in served]
    for c, name in enumerate(names):
        table[f"prob_{name}"] = probs[:, c]
    if ood is not None:  # the model's out-of-distribution check, as the served model answers it
        table["ood_score"] = ood
        table["out_of_distribution"] = flagged(ood)
    atomic_write_text(out / contract.PREDICTIONS_CSV, csv_text(table))

    # The rule in each row, so that the file says which one it lists without its column name.
    served_rule = "argmax"
    if rule is not None:
        positive = rule.positive_class
        served_rule = f"threshold: {positive} when P({positive}) >= {rule.threshold:.4g}"
    # Mistakes of the served rule (as the predictor and the explainer decide), most confident
    # first: the probability of the class served.
    confidence = probs.max(1)
    served_confidence = probs[np.arange(len(y)), served]
    wrong = np.flatnonzero(served != y)
    top = wrong[np.argsort(-served_confidence[wrong], kind="stable")][:TOP_WRONG]
    rows = []
    for rank, i in enumerate(top, start=1):
        label = "_as_".join(metric_keys.key_part(names[c], names) for c in (y[i], served[i]))
        image = f"{contract.MISCLASSIFIED_DIR}/{rank}_{i}_{label}.png"
        pixels = test.images[i]
        pil = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        path = out / image
        path.parent.mkdir(exist_ok=True)
        pil.save(path, format="PNG")
        decided, confident = names[served[i]], served_confidence[i]
        rows.append([rank, i, files[i], names[y[i]], decided, confident, image, served_rule])
    # Named as in predictions.csv: ``decision`` is the threshold's class, ``predicted_label`` the
    # most probable one.
    served_as = "decision" if point is not None else "predicted_label"
    columns = ["rank", "index", "file", "true_label", served_as, "confidence", "image", "rule"]
    misclassified = pd.DataFrame(rows, columns=columns)
    atomic_write_text(out / contract.MISCLASSIFIED_CSV, csv_text(misclassified))

    aucs = [report["per_class"][n]["roc_auc"]["value"] for n in names]
    ece = report["overall"]["ece"]["value"]
    cm = np.array(report["confusion_matrix"])
    tta = report.get("tta") or "none"  # what the probabilities were averaged over
    argmax_cm = png_bytes(
        plots.confusion_matrix_figure(cm, names, plots.argmax_rule(point is None), tta)
    )
    atomic_write_bytes(out / contract.CONFUSION_MATRIX_PNG, argmax_cm)
    if rule is not None:
        at = plots.threshold_rule(rule)
        threshold_cm = png_bytes(
            plots.confusion_matrix_figure(np.array(point["confusion_matrix"]), names, at, tta)
        )
        atomic_write_bytes(out / CONFUSION_MATRIX_THRESHOLD_PNG, threshold_cm)
    roc = png_bytes(plots.roc_curves_figure(y, probs, names, aucs, rule, tta))
    atomic_write_bytes(out / contract.ROC_CURVES_PNG, roc)
    calibration = png_bytes(
        plots.calibration_figure(confidence, pred == y, report["ece_bins"], ece, tta)
    )
    atomic_write_bytes(out / contract.CALIBRATION_PNG, calibration)
    # Validated against the contract, so a report readers cannot parse is never published.
    schemas.EvaluationReport.model_validate(report)
    atomic_write_json(out / contract.METRICS_JSON, report)
