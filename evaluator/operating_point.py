"""Sensitivity and specificity per class at an operating point: the argmax decision, and for two
classes the decision threshold the trainer chose on validation data (``operating_point.json``)."""

import numpy as np
from mlflow.tracking import MlflowClient
from sklearn.metrics import confusion_matrix

from evaluator.metrics import wilson
from runs import checked_point, contract, load_json_artifact, threshold_labels

OPERATING_POINT_PATH = contract.OPERATING_POINT_JSON


def load_operating_point(client: MlflowClient, run_id: str, class_names: list[str]) -> dict | None:
    """The run's ``operating_point.json`` as the trainer wrote it, or None when it wrote none.

    Raises:
        ServiceUnavailable: MLflow is down (the job is retried, not published without it).
        InvalidInput: The file does not fit the model (``runs.checked_point``).
    """
    found = load_json_artifact(client, run_id, OPERATING_POINT_PATH)
    if found is not None:
        checked_point(found, class_names, f"{OPERATING_POINT_PATH} of run {run_id}")
    return found


# Two classes: ``positive`` where its probability reaches ``threshold``, else the other; the
# logged model's and the predictor's own rule.
threshold_predictions = threshold_labels


def at_operating_point(y_true: np.ndarray, pred: np.ndarray, class_names: list[str]) -> dict:
    """Per class sensitivity and specificity (Wilson 95 % intervals) of the predictions
    ``pred``, and their confusion matrix."""
    k = len(class_names)
    cm = confusion_matrix(y_true, pred, labels=list(range(k)))
    n = int(cm.sum())
    per_class = {}
    for c, name in enumerate(class_names):
        tp, support, predicted = int(cm[c, c]), int(cm[c].sum()), int(cm[:, c].sum())
        tn = n - support - (predicted - tp)
        per_class[name] = {
            "sensitivity": wilson(tp, support, f"samples of class {name!r}").to_dict(),
            "specificity": wilson(tn, n - support, f"samples outside class {name!r}").to_dict(),
        }
    return {"per_class": per_class, "confusion_matrix": cm.tolist()}


def operating_points(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str], point: dict | None
) -> dict:
    """``{"argmax": ..., "threshold": ...}``; ``threshold`` only for a two-class run with an
    operating point (it adds ``threshold``, ``positive_class``, ``target_sensitivity`` and the
    validation figures the trainer recorded)."""
    out = {"argmax": at_operating_point(y_true, probs.argmax(1), class_names)}
    if point is not None and len(class_names) == 2:
        positive = class_names.index(point["positive_class"])
        pred = threshold_predictions(probs, positive, float(point["threshold"]))
        out["threshold"] = {
            **{key: point[key] for key in point if key != "rule"},
            **at_operating_point(y_true, pred, class_names),
        }
    return out
