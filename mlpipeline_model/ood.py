"""Whether an image is unlike the model's training images (out of distribution).

A classifier answers for any image, with a probability that can be high for an image of another
modality, body part or device than it was trained on. ``OODReference`` travels with the model
(the trainer sets it as the PyTorch module's ``ood_reference``) and scores each image by the
Mahalanobis distance of its penultimate features to the nearest class mean of the training
images, under their shared covariance (Lee et al., NeurIPS 2018), averaged over an ensemble's
members. The threshold is a quantile of the validation images' distances, taken split-conformally
(the ⌈(n+1)·q⌉-th smallest of n), so that a new image drawn like the validation images exceeds it
with probability at most about ``1 - quantile``; training images are not used for it (their
distances are smaller than new images').

``ood_score`` is the distance over that threshold: above 1, the image is out of distribution,
and the answer says so beside its class. The check catches images far from the training data
(another modality, a photograph, a blank or noise image); it is no guarantee for images close
to it (another scanner of the same modality may pass), so it warns and never replaces a person's
judgement that an image suits the model.
"""

import math
from collections.abc import Sequence

import numpy as np
import torch

METHOD = "mahalanobis to the nearest class mean, shared covariance (Ledoit-Wolf), per member"
"""What ``OODReference.summary()['method']`` says (one method so far)."""


def conformal_threshold(distances: np.ndarray, quantile: float) -> float:
    """The ⌈(n+1)·quantile⌉-th smallest of the n ``distances`` (the largest when that rank passes
    n): a new score exchangeable with them exceeds it with probability at most
    ``1 - quantile`` (the split-conformal bound; with the largest, about ``1/(n+1)``)."""
    values = np.sort(np.asarray(distances, dtype=np.float64))
    if len(values) == 0 or not 0 < quantile < 1:
        raise ValueError("the threshold needs validation distances and a quantile in (0, 1)")
    rank = min(len(values), math.ceil((len(values) + 1) * quantile))
    return float(values[rank - 1])


class OODReference:
    """The training images' class means and shared precision matrix per ensemble member, and
    the threshold on the validation images' distances (see the module's docstring).

    Attributes:
        means: Per member, the class means of its training features (``classes×F``).
        precisions: Per member, the inverse of the shrunk shared covariance (``F×F``).
        threshold: The distance above which an image is out of distribution.
        quantile: The validation quantile the threshold was taken at.
        validation_images: How many validation images the threshold was taken from.
        training_images: How many training images the means and covariance came from.
    """

    def __init__(
        self,
        means: Sequence[np.ndarray],
        precisions: Sequence[np.ndarray],
        threshold: float,
        quantile: float,
        validation_images: int,
        training_images: int,
    ) -> None:
        if len(means) != len(precisions) or not means:
            raise ValueError("one class-mean matrix and one precision matrix per member")
        self.means = [np.asarray(m, dtype=np.float32) for m in means]
        self.precisions = [np.asarray(p, dtype=np.float32) for p in precisions]
        self.threshold = float(threshold)
        self.quantile = float(quantile)
        self.validation_images = int(validation_images)
        self.training_images = int(training_images)

    def distances(self, features: Sequence[torch.Tensor | np.ndarray]) -> np.ndarray:
        """Per image, the mean over members of the Mahalanobis distance of its features to the
        nearest class mean (``features``: one ``N×F`` array per member, as the
        models' ``features_and_logits`` return them)."""
        if len(features) != len(self.means):
            raise ValueError(f"features of {len(features)} members for {len(self.means)}")
        total = None
        for f, means, precision in zip(features, self.means, self.precisions, strict=True):
            f = np.asarray(torch.as_tensor(f).detach().cpu(), dtype=np.float64)
            diff = f[:, None, :] - means[None].astype(np.float64)  # N×classes×F
            squared = np.einsum("nkd,de,nke->nk", diff, precision.astype(np.float64), diff)
            nearest = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
            total = nearest if total is None else total + nearest
        return total / len(features)

    def scores(self, features: Sequence[torch.Tensor | np.ndarray]) -> np.ndarray:
        """``distances`` over the threshold: above 1, out of distribution."""
        return self.distances(features) / self.threshold

    def summary(self) -> dict:
        """What an answer or a report says of the check (JSON)."""
        return {
            "method": METHOD,
            "threshold": self.threshold,
            "quantile": self.quantile,
            "validation_images": self.validation_images,
            "training_images": self.training_images,
            "members": len(self.means),
        }


def reference_of(model: torch.nn.Module | None) -> OODReference | None:
    """The model's ``OODReference``; None for a model trained without one (or before it
    existed), which answers without the check."""
    return getattr(model, "ood_reference", None) if model is not None else None
