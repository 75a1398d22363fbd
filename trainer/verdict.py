"""What the console says about the kept model beyond its figures: a model close to chance on
validation (a run that diverged without a NaN, or labels that do not match the images), and a
decision threshold chosen on too few positive validation images to mean much."""

from typing import Any

# Below this validation AUC a model is read as close to chance (0.5): a usable classifier of
# medical images rarely sits there, a diverged or mislabelled training usually does.
CHANCE_AUC = 0.6
# Below this it ranks the classes the wrong way round: not what a failed training does, but what
# validation images labelled otherwise than the training images do.
INVERTED_AUC = 0.4
# Fewer positive validation images than this pin the threshold's sensitivity down poorly: with
# 9, one image moves it by 0.11, and 8 of 9 found has a 95 % interval of 0.57-0.98 (27 of 30:
# 0.74-0.97).
FEW_POSITIVES = 10


def chance_note(val_auc: float, lr: float) -> str | None:
    """Why a kept model with validation AUC below ``CHANCE_AUC`` is suspect, and what to try."""
    if not val_auc < CHANCE_AUC:  # NaN (one class in validation) is not judged here
        return None
    if val_auc < INVERTED_AUC:
        return (
            f"the kept model's validation AUC is {val_auc:.3f}, below chance (0.5): it ranks the "
            "validation images the wrong way round, which a failed training does not do; check "
            "that validation labels its classes as training does (a val/ folder's class folders "
            "named or filled otherwise, labels swapped in a manifest or .npz)"
        )
    return (
        f"the kept model's validation AUC is {val_auc:.3f}, close to chance (0.5): it has learned "
        f"little. If the training loss rose or stayed flat, lower --lr (now {lr:g}); check also "
        "that each class folder (or label) holds the images it names"
    )


def threshold_note(point: dict[str, Any] | None) -> str | None:
    """Whether the decision threshold rests on fewer than ``FEW_POSITIVES`` positive images."""
    if point is None or point["n_val_positive"] >= FEW_POSITIVES:
        return None
    low, high = point["val_sensitivity_ci"]
    n = point["n_val_positive"]
    return (
        f"the decision threshold ({point['threshold']:.3f}) was chosen on {n} validation "
        f"image{'s' if n != 1 else ''} of {point['positive_class']!r}: its sensitivity there, "
        f"{point['val_sensitivity']:.2f}, has a 95 % interval of {low:.2f}-{high:.2f}; give "
        f"validation more images of {point['positive_class']!r} (other patients) before "
        "relying on it"
    )
