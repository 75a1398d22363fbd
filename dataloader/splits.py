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


def clustered_split(
    labels: np.ndarray, clusters: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``stratified_split`` that keeps each cluster (``leakage.duplicate_clusters``) on one side.

    The split is drawn over the clusters' first images, each standing for its cluster with its
    own label, and every cluster follows its first image; without duplicates (every cluster a
    single image) this is ``stratified_split`` exactly. Indices are sorted.
    """
    _, first = np.unique(clusters, return_index=True)
    first = np.sort(first)
    _, val_first = stratified_split(labels[first], fraction, seed)
    val_idx = np.flatnonzero(np.isin(clusters, clusters[first[val_first]]))
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx
