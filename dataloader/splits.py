"""A stratified, seeded validation split carved from the training set."""

import numpy as np


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
        n_val = min(int(np.floor(len(members) * fraction + 0.5)), len(members) - 1)
        if n_val > 0:
            val.append(rng.permutation(members)[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx
