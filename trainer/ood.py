"""The out-of-distribution reference a trained model carries (``mlpipeline_model.ood``): fitted
on the training images' features, its threshold taken on the validation images' alone."""

import numpy as np
import torch
from sklearn.covariance import LedoitWolf

from runs import OODReference, conformal_threshold
from trainer.engine import Batches

MAX_FIT_IMAGES = 20_000
"""At most this many training images (drawn by the run's seed) fit the means and covariance:
more add little to a covariance of a few hundred features and cost a pass over each."""


def member_features(
    model: torch.nn.Module,
    data: Batches,
    device: torch.device,
    index: np.ndarray | None = None,
    batch_size: int = 256,
) -> list[np.ndarray]:
    """Each member's penultimate features (``N×F`` float64) of ``data`` (or its ``index``),
    a batch at a time (the split's images are never copied whole)."""
    model.eval()
    parts: list[list[np.ndarray]] = []
    chosen = np.arange(len(data)) if index is None else np.sort(index)
    with torch.inference_mode():
        for start in range(0, len(chosen), batch_size):
            x, _ = data.get(chosen[start : start + batch_size], device)
            features, _ = model.features_and_logits(x)
            parts.append([f.double().cpu().numpy() for f in features])
    return [np.concatenate(member) for member in zip(*parts, strict=True)]


def fit_reference(
    model: torch.nn.Module,
    train: Batches,
    val: Batches,
    device: torch.device,
    quantile: float,
    seed: int = 0,
) -> OODReference:
    """Class means and the shrunk shared covariance (Ledoit-Wolf) of the training features per
    member; the threshold: the split-conformal ``quantile`` of the validation distances."""
    index = None
    if len(train) > MAX_FIT_IMAGES:
        index = np.random.default_rng(seed).choice(len(train), MAX_FIT_IMAGES, replace=False)
    labels = train.labels if index is None else train.labels[np.sort(index)]
    classes = np.unique(labels)
    means, precisions = [], []
    for features in member_features(model, train, device, index):
        class_means = np.stack([features[labels == c].mean(axis=0) for c in classes])
        centred = features - class_means[np.searchsorted(classes, labels)]
        means.append(class_means)
        precisions.append(LedoitWolf(assume_centered=True).fit(centred).precision_)
    partial = OODReference(means, precisions, 1.0, quantile, len(val), len(labels))
    distances = partial.distances(member_features(model, val, device))
    partial.threshold = conformal_threshold(distances, quantile)
    return partial
