"""CutMix and MixUp on whole batches, returning soft targets, and the loss that accepts them.

Both transforms have the call shape of ``torchvision.transforms.v2.CutMix``:
``images, targets = cutmix(images, labels)`` with images ``B×C×H×W`` and integer labels ``B``;
``targets`` is ``B×num_classes``. Every random number comes from ``generator`` (a CPU
``torch.Generator``; the global torch RNG when ``None``), so the same seed gives the same batch.
"""

import math

import torch
import torch.nn.functional as F
from scipy.special import betaincinv


class _Mixer:
    """Argument checks, random draws and target building shared by CutMix and MixUp."""

    def __init__(
        self,
        num_classes: int,
        alpha: float = 1.0,
        p: float = 1.0,
        per_sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if not (alpha > 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha must be a positive number (Beta(alpha, alpha)), got {alpha}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p is a probability and must lie in [0, 1], got {p}")
        self.num_classes = num_classes
        self.alpha = float(alpha)
        self.p = float(p)
        self.per_sample = per_sample
        self.generator = generator

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_classes={self.num_classes}, alpha={self.alpha}, "
            f"p={self.p}, per_sample={self.per_sample})"
        )

    def _check(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be a B×C×H×W batch, got shape {tuple(images.shape)}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"labels must be a 1-D tensor with one class index per image ({images.shape[0]}),"
                f" got shape {tuple(labels.shape)}"
            )
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integer class indices, got {labels.dtype}")
        if labels.numel():
            low, high = (int(v) for v in torch.aminmax(labels))
            if low < 0 or high >= self.num_classes:
                raise ValueError(
                    f"labels must lie in [0, {self.num_classes - 1}], got {low} to {high}"
                )

    def _rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, dtype=torch.float64)

    def _beta(self, n: int) -> torch.Tensor:
        """``n`` draws from Beta(alpha, alpha) by inverting its CDF at uniforms of the generator."""
        return torch.from_numpy(betaincinv(self.alpha, self.alpha, self._rand(n).numpy()))

    def _targets(
        self, labels: torch.Tensor, perm: torch.Tensor, keep: torch.Tensor, dtype: torch.dtype
    ) -> torch.Tensor:
        """``keep·onehot(label) + (1 − keep)·onehot(partner's label)``; ``keep`` is ``B`` or 0-d."""
        batch = labels.shape[0]
        keep = keep.to(device=labels.device, dtype=dtype).reshape(-1, 1).expand(batch, 1)
        targets = torch.zeros(batch, self.num_classes, dtype=dtype, device=labels.device)
        targets.scatter_(1, labels.view(-1, 1), keep)
        return targets.scatter_add_(1, labels[perm].view(-1, 1), 1 - keep)

    @staticmethod
    def _target_dtype(images: torch.Tensor) -> torch.dtype:
        return images.dtype if images.dtype.is_floating_point else torch.float32


class CutMix(_Mixer):
    """Paste a box from a partner image into each image and mix the labels by pasted area.

    λ is drawn from Beta(α, α); the box covers a fraction 1−λ of the image, its centre is uniform
    over the image and it is clipped to the image; each target's weight on the image's own label
    is the exact fraction of pixels that were *not* pasted. Partners come from a random permutation
    of the batch. With probability ``1 − p`` the batch (with ``per_sample``: the image) passes
    unchanged with one-hot targets.

    Args:
        num_classes: Length of the target vectors.
        alpha: Beta distribution parameter.
        p: Probability of mixing.
        per_sample: Draw λ, the box and the coin for every image separately (vectorized).
        generator: Source of randomness; the global torch RNG when ``None``.
    """

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(images, labels)
        if self.per_sample:
            return self._per_sample(images, labels)
        batch, _, height, width = images.shape
        dtype = self._target_dtype(images)
        coin, centre_y, centre_x = self._rand(3).tolist()
        perm = torch.randperm(batch, generator=self.generator).to(images.device)
        cut = math.sqrt(1.0 - float(self._beta(1)[0]))
        if coin >= self.p:
            return images, self._targets(labels, perm, torch.ones(()), dtype)
        top, bottom = _span(centre_y * height, cut * height, height)
        left, right = _span(centre_x * width, cut * width, width)
        mixed = images.clone()
        box = images[:, :, top:bottom, left:right]
        mixed[:, :, top:bottom, left:right] = box.index_select(0, perm)  # copies the box only
        keep = 1.0 - (bottom - top) * (right - left) / (height * width)
        return mixed, self._targets(labels, perm, torch.tensor(keep), dtype)

    def _per_sample(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, height, width = images.shape
        apply = self._rand(batch) < self.p
        perm = torch.randperm(batch, generator=self.generator).to(images.device)
        cut = torch.sqrt(1.0 - self._beta(batch))
        centre_y, centre_x = self._rand(batch) * height, self._rand(batch) * width
        y1 = (centre_y - cut * height / 2).round().clamp(0, height).view(-1, 1)
        y2 = (centre_y + cut * height / 2).round().clamp(0, height).view(-1, 1)
        x1 = (centre_x - cut * width / 2).round().clamp(0, width).view(-1, 1)
        x2 = (centre_x + cut * width / 2).round().clamp(0, width).view(-1, 1)
        rows = torch.arange(height, dtype=torch.float64).view(1, -1)
        cols = torch.arange(width, dtype=torch.float64).view(1, -1)
        in_rows = (rows >= y1) & (rows < y2) & apply.view(-1, 1)  # B×H
        in_cols = (cols >= x1) & (cols < x2)  # B×W
        inside = (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1)  # B×1×H×W
        mixed = torch.where(inside.to(images.device), images[perm], images)
        area = ((y2 - y1) * (x2 - x1)).flatten() * apply
        keep = 1.0 - area / (height * width)
        return mixed, self._targets(labels, perm, keep, self._target_dtype(images))


def _span(centre: float, length: float, limit: int) -> tuple[int, int]:
    """Pixel range ``[start, stop)`` of ``length`` around ``centre``, clipped to the image."""
    start = min(max(round(centre - length / 2), 0), limit)
    stop = min(max(round(centre + length / 2), 0), limit)
    return start, stop


class MixUp(_Mixer):
    """Blend each image with a partner: ``λ·x + (1 − λ)·x_partner``, targets alike.

    Same arguments and call as :class:`CutMix`; images must be floating point.
    """

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(images, labels)
        if not images.dtype.is_floating_point:
            raise ValueError(f"MixUp needs floating-point images, got {images.dtype}")
        batch = images.shape[0]
        n = batch if self.per_sample else 1
        apply = self._rand(n) < self.p
        perm = torch.randperm(batch, generator=self.generator).to(images.device)
        lam = torch.where(apply, self._beta(n), torch.ones(n, dtype=torch.float64))
        if not self.per_sample and not bool(apply):
            return images, self._targets(labels, perm, torch.ones(()), images.dtype)
        weight = lam.to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)
        mixed = images * weight + images[perm] * (1 - weight)
        return mixed, self._targets(labels, perm, lam, images.dtype)


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy against soft targets ``B×K`` (class probabilities) or labels ``B``."""
    if targets.ndim == 2 and targets.shape != logits.shape:
        raise ValueError(
            f"soft targets must have the logits' shape {tuple(logits.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    if targets.ndim == 2:
        targets = targets.to(logits.dtype)
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
