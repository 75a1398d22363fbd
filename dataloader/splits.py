"""A stratified, seeded validation split carved from the training set, and how far a carve
came from the requested fraction."""

from typing import Any

import numpy as np


def val_count(n: int, fraction: float) -> int:
    """How many of a class's ``n`` training images a stratified carve of ``fraction`` takes:
    ``round(n * fraction)`` (halves up), always leaving one for training."""
    return min(int(np.floor(n * fraction + 0.5)), n - 1)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)``: about ``fraction`` of every class goes to val.

    Unlike scikit-learn's ``train_test_split(stratify=...)`` this never fails on tiny classes:
    each class gives ``round(n * fraction)`` images to val but always keeps one for training.
    Both index arrays are sorted, so the original file order is kept.
    """
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        n_val = val_count(len(members), fraction)
        if n_val > 0:
            val.append(rng.permutation(members)[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def carve_report(
    labels: np.ndarray, val_idx: np.ndarray, fraction: float, class_names: list[str], why: str
) -> dict[str, Any]:
    """The statistics' ``val_carve``: the requested ``fraction``, the share of each class's
    training images (``labels``, before the carve) that went to val and of all of them
    (``total``), and a ``note`` (one line, else None) when a class or the whole is carved at
    more than twice ``fraction`` or a class has no training image left; ``why`` says what
    kept the images together."""
    counts = np.bincount(labels, minlength=len(class_names))
    in_val = np.bincount(labels[val_idx], minlength=len(class_names))
    far = []
    for name, n, v in zip(class_names, counts, in_val, strict=True):
        if n and (v == n or v > 2 * fraction * n):
            left = ", none left to train on" if v == n else ""
            far.append(f"{v} of {n} {name!r} images ({v / n:.0%}{left})")
    if len(val_idx) > 2 * fraction * len(labels):
        far.append(
            f"{len(val_idx)} of {len(labels)} images in all ({len(val_idx) / len(labels):.0%})"
        )
    note = None
    if far:
        note = (
            f"the validation split carved from train took {'; '.join(far)} for a fraction of "
            f"{fraction}: {why}, and no carve came closer; add a val/ folder to choose the "
            "validation images yourself"
        )
    share = {
        name: round(float(v / n), 4) if n else None
        for name, n, v in zip(class_names, counts, in_val, strict=True)
    }
    share["total"] = round(len(val_idx) / max(len(labels), 1), 4)
    return {"fraction": fraction, "share": share, "note": note}
