"""The decision threshold of a two-class model, chosen on validation data for a target
sensitivity (written by the trainer as ``operating_point.json``, applied by the evaluator)."""

import re
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_curve

from common import InvalidInput
from runs import UNCONFIRMED_POSITIVE, inference, wilson_interval
from trainer.engine import Batches, inputs_of

# Words that name the class without the finding: of two classes, the other one is the finding,
# whose sensitivity the threshold targets ("malignant" beside "normal, benign", "pneumonia"
# beside "normal", "abnormal" beside "normal", "tumor" beside "no_tumor", "glioma" beside
# "notumor"). Prefixes are not read ("nonunion" is a finding): compounds are listed.
NEGATIVE_WORDS = frozenset({
    "normal", "benign", "healthy", "negative", "control",
    "notumor", "nontumor", "nonmalignant", "noncancer", "noncancerous", "nondiseased",
})  # fmt: skip
NEGATING = frozenset({"no", "non", "not", "without"})  # as the first word: "no finding"


def _reads_negative(name: str) -> bool:
    words = re.findall(r"[a-z]+", name.lower())
    return bool(words) and (words[0] in NEGATING or not NEGATIVE_WORDS.isdisjoint(words))


def choose_positive(class_names: list[str], positive: str | None) -> tuple[int, str]:
    """Index of the positive class (the finding whose sensitivity the threshold targets) and how
    it was chosen: ``positive`` (a name, or a label number); else, of two classes, the one
    beside a class whose name reads as without the finding (``normal``, ``benign``,
    ``no_tumor``...); else label 1, the second class, which the names do not confirm.

    Raises:
        InvalidInput: ``positive`` is not one of the classes.
    """
    if positive is None:
        negative = [i for i, name in enumerate(class_names) if _reads_negative(name)]
        if len(class_names) == 2 and len(negative) == 1:
            found = class_names[negative[0]]
            return 1 - negative[0], f"chosen by name: {found!r} reads as without the finding"
        return 1, UNCONFIRMED
    if positive in class_names:
        return class_names.index(positive), OPTION
    if positive.isdigit() and int(positive) < len(class_names):
        return int(positive), OPTION
    raise InvalidInput(
        f"--positive-class {positive!r} is not one of the classes ({', '.join(class_names)}); "
        "pass one of these names or its label number"
    )


UNCONFIRMED = UNCONFIRMED_POSITIVE
OPTION = "set with --positive-class"


def positive_index(class_names: list[str], positive: str | None) -> int:
    """Index of the positive class (``choose_positive``)."""
    return choose_positive(class_names, positive)[0]


def positive_warning(class_names: list[str], positive: str | None, target: float) -> str | None:
    """What to tell before training when the positive class was taken as label 1 without the
    names confirming it (bare numbers such as a MedMNIST ``.npz``'s ``0``/``1``): the threshold
    may protect the wrong class. None when ``--positive-class`` or the names chose it."""
    index, how = choose_positive(class_names, positive)
    if how != UNCONFIRMED:
        return None
    other = class_names[1 - index]
    return (
        f"the decision threshold targets sensitivity {target} for class {class_names[index]!r} "
        f"({how}); if the finding is {other!r}, pass --positive-class {other!r} (BreastMNIST's "
        "label 0 is malignant: --class-names malignant,benign names both and makes it the "
        "positive class)"
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
    """A threshold ``t`` with the highest specificity at sensitivity ≥ ``target`` when
    predicting positive for ``score ≥ t``; returns ``(t, sensitivity, specificity)`` on these
    data. ``t`` lies halfway between the lowest positive score it keeps and the next lower
    score, not on a score: a probability's last digits vary with the batch size (float
    arithmetic), which would move an image sitting on the threshold to the other side.

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
    kept = min(float(thresholds[i]), 1.0)  # thresholds[0] is inf: no score reaches it
    below = float(thresholds[i + 1]) if i + 1 < len(thresholds) else 0.0
    return (kept + below) / 2, float(tpr[i]), float(1.0 - fpr[i])


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
    index, how = choose_positive(class_names, positive)
    probs = inference.predict(model, inputs_of(val, device)).numpy()
    labels = np.asarray(val.labels)
    threshold, sensitivity, specificity = threshold_for_sensitivity(
        labels == index, probs[:, index], target
    )
    positive, called = labels == index, probs[:, index] >= threshold
    positives, negatives = int(positive.sum()), int((~positive).sum())
    found, cleared = int((called & positive).sum()), int((~called & ~positive).sum())
    return {
        "positive_class": class_names[index],
        "positive_index": index,
        "positive_chosen": how,
        "target_sensitivity": target,
        "threshold": threshold,
        "rule": f"predict {class_names[index]!r} when its probability >= threshold",
        "chosen_on": "validation",
        "n_val": len(labels),
        "val_sensitivity": sensitivity,
        "val_specificity": specificity,
        # How well so few validation images pin the rule down (30 positives: ±0.1 or so). On
        # the images the threshold was tuned on an interval covers less than 95 %: a lower
        # bound on how uncertain the rule is, not a test figure.
        "n_val_positive": positives,
        "n_val_negative": negatives,
        "val_sensitivity_ci": list(wilson_interval(found, positives)),
        "val_specificity_ci": list(wilson_interval(cleared, negatives)),
    }
