"""The decision threshold of a two-class model, chosen on validation data for a target
sensitivity (written by the trainer as ``operating_point.json``, applied by the evaluator)."""

from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_curve

from common import InvalidInput
from runs import inference
from trainer.engine import Batches, inputs_of


def positive_index(class_names: list[str], positive: str | None) -> int:
    """Index of the positive class: ``positive`` (a name, or a label number), default label 1.

    Raises:
        InvalidInput: ``positive`` is not one of the classes.
    """
    if positive is None:
        return 1
    if positive in class_names:
        return class_names.index(positive)
    if positive.isdigit() and int(positive) < len(class_names):
        return int(positive)
    raise InvalidInput(
        f"--positive-class {positive!r} is not one of the classes ({', '.join(class_names)}); "
        "pass one of these names or its label number"
    )


def check_threshold_data(
    val_labels: np.ndarray, class_names: list[str], val_source: str = "folder"
) -> None:
    """Refuse, before training, a validation split that cannot choose a two-class decision
    threshold (it needs images of both classes): found after training, hours would be lost.
    ``val_source`` (``DatasetSplits.val_source``) tells which fix can work.

    Raises:
        InvalidInput: One class has no validation image.
    """
    missing = [n for i, n in enumerate(class_names) if not (np.asarray(val_labels) == i).any()]
    if not missing:
        return
    names = ", ".join(repr(n) for n in missing)
    if not val_source.startswith("carved"):  # a val/ folder: --val-fraction is not used
        fix = f"add images of {names} to val/"
    elif "by group" in val_source or "kept with their copies" in val_source:
        # Copies and a patient's images stay on one side: a larger fraction cannot split them.
        fix = (
            f"validation was {val_source}: copies of an image (exact or near) and the images of "
            f"one patient stay together, and those of {names} are kept in train whole, so no "
            f"--val-fraction gives validation one; add a val/ folder with images of every "
            f"class, or more distinct images (other patients) of {names}"
        )
    else:
        fix = "use a larger --val-fraction or add a val/ folder with images of every class"
    raise InvalidInput(
        f"the validation split ({len(val_labels)} images) has no image of class {names}, and "
        f"the decision threshold is chosen on it for both classes; {fix}, or pass "
        "--target-sensitivity 0 (no threshold: the most probable class decides)"
    )


def threshold_for_sensitivity(
    positive: np.ndarray, score: np.ndarray, target: float
) -> tuple[float, float, float]:
    """The highest threshold ``t`` with sensitivity ≥ ``target`` when predicting positive for
    ``score ≥ t``; returns ``(t, sensitivity, specificity)`` on these data.

    Raises:
        InvalidInput: ``positive`` lacks positives or negatives (the ROC curve is undefined).
    """
    if positive.all() or not positive.any():
        raise InvalidInput(
            "the validation split needs images of both classes to choose a decision threshold; "
            "use a larger --val-fraction or --target-sensitivity 0"
        )
    fpr, tpr, thresholds = roc_curve(positive, score, drop_intermediate=False)
    i = int(np.argmax(tpr >= target - 1e-12))  # tpr rises to 1, so there is always one
    return float(min(thresholds[i], 1.0)), float(tpr[i]), float(1.0 - fpr[i])


def choose_threshold(
    model: torch.nn.Module,
    val: Batches,
    device: torch.device,
    class_names: list[str],
    positive: str | None,
    target: float,
) -> dict[str, Any]:
    """The operating point of ``model`` on the validation split: the document logged as
    ``operating_point.json``."""
    index = positive_index(class_names, positive)
    probs = inference.predict(model, inputs_of(val, device)).numpy()
    labels = np.asarray(val.labels)
    threshold, sensitivity, specificity = threshold_for_sensitivity(
        labels == index, probs[:, index], target
    )
    return {
        "positive_class": class_names[index],
        "positive_index": index,
        "target_sensitivity": target,
        "threshold": threshold,
        "rule": f"predict {class_names[index]!r} when its probability >= threshold",
        "chosen_on": "validation",
        "n_val": len(labels),
        "val_sensitivity": sensitivity,
        "val_specificity": specificity,
    }
