"""The out-of-distribution reference a trained model carries (``mlpipeline_model.ood``): fitted
on the training images' features, its threshold taken on the validation images' alone."""

import argparse
import math
import sys

import numpy as np
import torch
from sklearn.covariance import LedoitWolf

from runs import OODReference, conformal_threshold, pixel_statistics
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
    pixels: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[np.ndarray]:
    """Each member's penultimate features (``N×F`` float64) of ``data`` (or its ``index``),
    a batch at a time (the split's images are never copied whole); ``pixels``, when given,
    receives each batch's ``runs.pixel_statistics`` from the same pass."""
    model.eval()
    parts: list[list[np.ndarray]] = []
    chosen = np.arange(len(data)) if index is None else np.sort(index)
    with torch.inference_mode():
        for start in range(0, len(chosen), batch_size):
            x, _ = data.get(chosen[start : start + batch_size], device)
            if pixels is not None:
                pixels.append(pixel_statistics(x))
            features, _ = model.features_and_logits(x)
            parts.append([f.double().cpu().numpy() for f in features])
    return [np.concatenate(member) for member in zip(*parts, strict=True)]


def pixel_ranges(pixels: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float]]:
    """The range ``(low, high)`` of the per-image mean and of the per-image standard deviation
    over the batches' ``pixel_statistics`` (``member_features``' ``pixels``)."""
    means, stds = (np.concatenate(values) for values in zip(*pixels, strict=True))
    return [(float(means.min()), float(means.max())), (float(stds.min()), float(stds.max()))]


def fit_reference(
    model: torch.nn.Module,
    train: Batches,
    val: Batches,
    device: torch.device,
    quantile: float,
    seed: int = 0,
) -> tuple[OODReference | None, str | None]:
    """Class means and the shrunk shared covariance (Ledoit-Wolf) of the training features per
    member; the threshold: the split-conformal ``quantile`` of the validation distances.

    Returns:
        The reference and a warning for the log: how often it flags images like the validation
        ones when there are too few of them for ``quantile``; or None and why the model goes
        without the check (no validation image; features that are not finite, as of weights
        that diverged; features that do not vary, so no distance means anything).
    """
    if len(val) == 0:
        return None, "there is no validation image to take its threshold on"
    index = None
    if len(train) > MAX_FIT_IMAGES:
        index = np.random.default_rng(seed).choice(len(train), MAX_FIT_IMAGES, replace=False)
    labels = train.labels if index is None else train.labels[np.sort(index)]
    classes = np.unique(labels)
    means, precisions, pixels = [], [], []
    for features in member_features(model, train, device, index, pixels=pixels):
        if not np.isfinite(features).all():
            return None, "the model's features of its training images are not finite numbers"
        class_means = np.stack([features[labels == c].mean(axis=0) for c in classes])
        centred = features - class_means[np.searchsorted(classes, labels)]
        means.append(class_means)
        precisions.append(LedoitWolf(assume_centered=True).fit(centred).precision_)
    try:
        partial = OODReference.of(means, precisions, 1.0, quantile, len(val), len(labels))
    except np.linalg.LinAlgError:  # a covariance of zero (dead features): no precision
        return None, "the model's features do not vary across its training images"
    partial.pixel_ranges = pixel_ranges(pixels)
    threshold = conformal_threshold(partial.distances(member_features(model, val, device)),
                                    quantile)  # fmt: skip
    if not math.isfinite(threshold) or threshold <= 0:
        return None, "the validation images' distances are not positive finite numbers"
    partial.threshold = threshold
    if partial.expected_rate > 1 - quantile + 1e-9:
        return partial, (
            f"with {len(val)} validation images the out-of-distribution threshold is their "
            f"largest distance, so it flags about {partial.expected_rate:.1%} of new images like "
            f"them, not {1 - quantile:.1%} (--ood-quantile {quantile} needs at least "
            f"{math.ceil(quantile / (1 - quantile) - 1e-9)})"
        )
    return partial, None


def attach_check(model: torch.nn.Module, train: Batches, val: Batches, device: torch.device,
                 args: argparse.Namespace) -> float | None:  # fmt: skip
    """Fit the check (``args.ood_quantile``, ``args.seed``) and store it on ``model``; without
    it (``fit_reference`` says why, on stderr) the model answers as one trained without.
    Returns its threshold, which ``trainer.finish`` logs as the run's param ``ood_threshold``
    (None: no check)."""
    reference, warning = fit_reference(model, train, val, device, args.ood_quantile, args.seed)
    if reference is None:
        print(f"warning: no out-of-distribution check: {warning}", file=sys.stderr, flush=True)
        return None
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    model.ood_reference = reference.state()
    return reference.threshold
