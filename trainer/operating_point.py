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


# What keeps a carved class's images together, by ``DatasetSplits.val_how``.
TOGETHER = {
    "carved_by_group": "the images of one patient (group) and copies of an image stay together",
    "carved_keeping_copies": "copies of an image (exact or near) stay together",
    "carved": "one image",
}


def check_threshold_data(
    val_labels: np.ndarray,
    class_names: list[str],
    val_how: str = "folder",
    carve_units: list[int] | None = None,
) -> None:
    """Refuse, before training, a validation split that cannot choose a two-class decision
    threshold (it needs images of both classes): found after training, hours would be lost.
    ``val_how`` and ``carve_units`` (``DatasetSplits.val_how``, ``.val_carve_units``) tell which
    fix can work.

    Raises:
        InvalidInput: One class has no validation image.
    """
    missing = [i for i in range(len(class_names)) if not (np.asarray(val_labels) == i).any()]
    if not missing:
        return
    names = ", ".join(repr(class_names[i]) for i in missing)
    if val_how == "folder":  # --val-fraction is not used
        fix = f"add images of {names} to val/"
    elif val_how == "npz":
        fix = (
            f"validation is the .npz file's own val split (val_images, val_labels), not carved "
            f"from train: add images of {names} to it"
        )
    elif carve_units is not None and any(carve_units[i] <= 1 for i in missing):
        # A larger fraction cannot split one unit: the class stays in train whole.
        fix = (
            f"validation was carved from train, where {TOGETHER.get(val_how, 'one image')} "
            f"on one side, and the training images of {names} are one such unit, kept in train "
            "whole, so no --val-fraction gives validation one; add a val/ folder with images of "
            f"every class, or more distinct images (other patients) of {names}"
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
