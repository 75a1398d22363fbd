"""Sensitivity and specificity per class at an operating point: the argmax decision, and for two
classes the decision threshold the trainer chose on validation data (``operating_point.json``)."""

import numpy as np
from sklearn.metrics import confusion_matrix

from evaluator.metrics import class_rates, wilson
from runs import OperatingPoint, decided_labels


def at_operating_point(y_true: np.ndarray, pred: np.ndarray, class_names: list[str]) -> dict:
    """Per class sensitivity and specificity (Wilson 95 % intervals) of the predictions
    ``pred``, and their confusion matrix."""
    cm = confusion_matrix(y_true, pred, labels=list(range(len(class_names))))
    per_class = {}
    for c, name in enumerate(class_names):
        rates = class_rates(cm, c, name)
        per_class[name] = {key: rates[key].to_dict() for key in ("sensitivity", "specificity")}
    return {"per_class": per_class, "confusion_matrix": cm.tolist()}


def predictive_values(cm: np.ndarray, class_names: list[str], positive: str) -> dict:
    """Accuracy, PPV (precision of ``positive``) and NPV (precision of the other class) of a
    two-class confusion matrix ``cm``, each with its Wilson 95 % interval."""
    cm = np.asarray(cm)
    pos = class_names.index(positive)
    neg = 1 - pos
    return {
        "accuracy": wilson(int(np.trace(cm)), int(cm.sum()), "samples").to_dict(),
        "ppv": class_rates(cm, pos, positive)["precision"].to_dict(),
        "npv": class_rates(cm, neg, class_names[neg])["precision"].to_dict(),
    }


def tta_caveat(tta: str) -> str | None:
    """Why figures at the threshold of an evaluation with test-time augmentation ``tta`` are not
    quite the served decision's; None without augmentation."""
    if tta == "none":
        return None
    return (
        f"the threshold was chosen on single-pass validation probabilities but is applied here "
        f"to probabilities averaged over flipped copies (tta={tta}), which are distributed "
        "otherwise; the served model decides on single-pass probabilities, so its sensitivity "
        "and specificity at this threshold may differ from these"
    )


def operating_points(
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    point: OperatingPoint | None,
    tta: str = "none",
) -> dict:
    """``{"argmax": ..., "threshold": ...}``; ``threshold`` only for a two-class run with an
    operating point (``runs.read_operating_point``): its fields (``threshold``,
    ``positive_class``, ``target_sensitivity`` and the validation figures the trainer recorded)
    and the test split decided by it (``runs.decided_labels``, the predictor's rule), with the
    accuracy, PPV and NPV of that decision (``predictive_values``) and, for ``probs`` made with
    test-time augmentation, a ``caveat`` (``tta_caveat``)."""
    out = {"argmax": at_operating_point(y_true, probs.argmax(1), class_names)}
    if point is not None:
        pred = decided_labels(point, probs, class_names)
        decided = at_operating_point(y_true, pred, class_names)
        rates = predictive_values(decided["confusion_matrix"], class_names, point.positive_class)
        out["threshold"] = {**point.model_dump(), **decided, **rates}
        if caveat := tta_caveat(tta):
            out["threshold"]["caveat"] = caveat
    return out
