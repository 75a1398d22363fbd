"""Whether an image is unlike the model's training images (out of distribution).

A classifier answers for any image, with a probability that can be high for an image of another
modality, body part or device than it was trained on. The trainer fits an ``OODReference`` and
stores its ``state()`` as the PyTorch module's ``ood_reference``: plain numbers and numpy arrays,
so a service whose code predates the check unpickles the module and ignores it (the model's files
digest covers them; ``weights_digest``, of the state dict, does not). It scores each image
by the Mahalanobis distance of its penultimate features to the nearest class mean of the training
images, under their shared covariance (Lee et al., NeurIPS 2018), averaged over an ensemble's
members. The threshold is the r-th smallest of the n validation images' distances, r =
⌈(n+1)·q⌉ (split-conformal; the largest when that passes n), so that a new image drawn like the
validation images exceeds it with probability ``expected_rate`` = (n+1−r)/(n+1) on average over
validation draws: 1 − q for n ≥ q/(1−q) validation images, 1/(n+1) below (the largest of 78
BreastMNIST validation images: 1.3 %). Training images are not used for it (their distances are
smaller than new images').

``ood_score`` is the distance over that threshold: above 1 (``flagged``), the image is out of
distribution, and the answer says so beside its class; features that are not finite score
``MAX_SCORE``. The check catches images far from the training data (another modality, a
photograph, a blank or noise image); it is no guarantee for images close to it (another scanner of
the same modality may pass), so it warns and never replaces a person's judgement that an image
suits the model.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

METHOD = "mahalanobis to the nearest class mean, shared covariance (Ledoit-Wolf), per member"
"""What ``OODReference.summary()['method']`` says (one method so far)."""
FORMAT = "mahalanobis/1"
"""The ``format`` of ``OODReference.state()``; another is not read (the model answers without)."""
MAX_SCORE = 1e6
"""The score of an image whose features are not finite (NaN or inf in JSON is no number)."""
PIXEL_MARGIN = 0.1
"""How far, in widths of the training images' range, an image's brightness or spread may lie
outside that range before ``pixel_scores`` passes 1."""


def conformal_rank(n: int, quantile: float) -> int:
    """The rank r = ⌈(n+1)·quantile⌉ of the threshold among n validation distances, at most n."""
    if n < 1 or not 0 < quantile < 1:
        raise ValueError("the threshold needs validation distances and a quantile in (0, 1)")
    return min(n, math.ceil((n + 1) * quantile))


def conformal_threshold(distances: np.ndarray, quantile: float) -> float:
    """The r-th smallest of the n ``distances`` (``conformal_rank``): a new score exchangeable
    with them exceeds it with probability (n+1−r)/(n+1) on average, at most about
    ``1 - quantile`` once n ≥ quantile/(1−quantile)."""
    values = np.sort(np.asarray(distances, dtype=np.float64))
    return float(values[conformal_rank(len(values), quantile) - 1])


def flagged(scores: np.ndarray | float) -> np.ndarray:
    """Whether each ``ood_score`` marks its image as out of distribution (above 1)."""
    return np.asarray(scores) > 1.0


class OODReference:
    """The training images' class means and shared precision per ensemble member, kept as its
    Cholesky factor L (precision = L·Lᵀ) and the means whitened by it, so a distance is one
    matrix product per image and member: ‖f·L − m·L‖ for the nearest class mean m.

    Attributes:
        factors: Per member, the ``F×F`` Cholesky factor of the shrunk shared precision.
        whitened_means: Per member, the class means times its factor (``classes×F``).
        threshold: The distance above which an image is out of distribution.
        quantile: The validation quantile the threshold was taken at.
        validation_images: How many validation images (n) the threshold was taken from.
        training_images: How many training images the means and covariance came from.
        pixel_ranges: The training images' range ``(low, high)`` of the per-image mean and
            standard deviation of the model's input pixels in ``[0, 1]`` (``pixel_scores``), or
            None (not recorded: the features alone decide).
    """

    def __init__(
        self,
        factors: Sequence[np.ndarray],
        whitened_means: Sequence[np.ndarray],
        threshold: float,
        quantile: float,
        validation_images: int,
        training_images: int,
        pixel_ranges: Sequence[Sequence[float]] | None = None,
    ) -> None:
        if len(factors) != len(whitened_means) or not factors:
            raise ValueError("one precision factor and one class-mean matrix per member")
        self.factors = [np.asarray(f, dtype=np.float64) for f in factors]
        self.whitened_means = [np.asarray(m, dtype=np.float64) for m in whitened_means]
        self.threshold = float(threshold)
        self.quantile = float(quantile)
        self.validation_images = int(validation_images)
        self.training_images = int(training_images)
        self.pixel_ranges = (
            None if pixel_ranges is None else [(float(lo), float(hi)) for lo, hi in pixel_ranges]
        )

    @classmethod
    def of(
        cls,
        means: Sequence[np.ndarray],
        precisions: Sequence[np.ndarray],
        threshold: float,
        quantile: float,
        validation_images: int,
        training_images: int,
    ) -> "OODReference":
        """From class means and precision matrices (each symmetric positive definite:
        ``numpy.linalg.LinAlgError`` otherwise)."""
        factors = [np.linalg.cholesky(np.asarray(p, dtype=np.float64)) for p in precisions]
        whitened = [np.asarray(m, np.float64) @ f for m, f in zip(means, factors, strict=True)]
        return cls(factors, whitened, threshold, quantile, validation_images, training_images)

    @property
    def rank(self) -> int:
        """The threshold's rank r among the n validation distances (``conformal_rank``)."""
        return conformal_rank(self.validation_images, self.quantile)

    @property
    def expected_rate(self) -> float:
        """The share of new images like the validation ones that the check flags, on average:
        (n+1−r)/(n+1) (see the module's docstring)."""
        n = self.validation_images
        return (n + 1 - self.rank) / (n + 1)

    def distances(self, features: Sequence[torch.Tensor | np.ndarray]) -> np.ndarray:
        """Per image, the mean over members of the Mahalanobis distance of its features to the
        nearest class mean (``features``: one ``N×F`` array per member, as the models'
        ``features_and_logits`` return them); NaN where a feature is not finite."""
        if len(features) != len(self.factors):
            raise ValueError(f"features of {len(features)} members for {len(self.factors)}")
        total = None
        for f, factor, means in zip(features, self.factors, self.whitened_means, strict=True):
            x = np.asarray(torch.as_tensor(f).detach().cpu(), dtype=np.float64) @ factor
            squared = (
                (x * x).sum(axis=1)[:, None] - 2.0 * x @ means.T + (means * means).sum(axis=1)
            )  # ‖x − m‖² for every class mean m at once (N×classes)
            nearest = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
            total = nearest if total is None else total + nearest
        return total / len(features)

    def pixel_scores(self, x: torch.Tensor) -> np.ndarray | None:
        """Per image of the model's input ``x`` (``N×C×H×W`` in ``[0, 1]``), how far its mean
        and standard deviation lie from the middle of the training images' ranges, in half
        ranges widened by ``PIXEL_MARGIN`` on each side (above 1: outside): a dark, blank or
        washed-out frame can sit near the training features, never inside these ranges.
        None without recorded ranges."""
        if not self.pixel_ranges:
            return None
        worst = None
        for value, (low, high) in zip(pixel_statistics(x), self.pixel_ranges, strict=True):
            half = (high - low) / 2 + PIXEL_MARGIN * max(high - low, 1e-3)
            score = np.abs(value - (low + high) / 2) / half
            worst = score if worst is None else np.maximum(worst, score)
        return worst

    def scores(
        self, features: Sequence[torch.Tensor | np.ndarray], x: torch.Tensor | None = None
    ) -> np.ndarray:
        """``distances`` over the threshold, or the ``pixel_scores`` of the input ``x`` where
        they are higher (above 1: ``flagged``); ``MAX_SCORE`` where the features are not
        finite."""
        with np.errstate(invalid="ignore"):
            scores = self.distances(features) / self.threshold
        pixels = self.pixel_scores(x) if x is not None else None
        if pixels is not None:
            scores = np.maximum(scores, pixels)  # a NaN distance stays NaN
        return np.where(np.isfinite(scores), scores, MAX_SCORE)

    def summary(self) -> dict:
        """What an answer or a report says of the check (JSON; ``pixel_ranges``: see the
        attribute)."""
        return {
            "method": METHOD,
            "threshold": self.threshold,
            "quantile": self.quantile,
            "expected_rate": round(self.expected_rate, 6),
            "validation_images": self.validation_images,
            "training_images": self.training_images,
            "members": len(self.factors),
            "pixel_ranges": self.pixel_ranges,
        }

    def state(self) -> dict[str, Any]:
        """Plain numbers and float64 arrays to store on the PyTorch module (``reference_of``
        reads them back without a copy)."""
        return {
            "format": FORMAT,
            "factors": list(self.factors),
            "whitened_means": list(self.whitened_means),
            "threshold": self.threshold,
            "quantile": self.quantile,
            "validation_images": self.validation_images,
            "training_images": self.training_images,
            "pixel_ranges": self.pixel_ranges,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "OODReference":
        keys = ("factors", "whitened_means", "threshold", "quantile", "validation_images",
                "training_images")  # fmt: skip
        return cls(*(state[key] for key in keys), pixel_ranges=state.get("pixel_ranges"))


def pixel_statistics(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image of ``x`` (``N×C×H×W`` in ``[0, 1]``): the mean and the standard deviation of
    its pixels, all channels together."""
    flat = torch.as_tensor(x).detach().cpu().reshape(len(x), -1).double()
    return flat.mean(dim=1).numpy(), flat.std(dim=1, correction=0).numpy()


def reference_of(model: torch.nn.Module | None) -> OODReference | None:
    """The model's check, from the ``state()`` stored as its ``ood_reference``; None for a model
    trained without one, before it existed, or with a format this code does not read."""
    state = getattr(model, "ood_reference", None) if model is not None else None
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        return None
    return OODReference.from_state(state)
