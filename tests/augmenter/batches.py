"""Batches whose every pixel value is unique, so a pasted pixel reveals where it came from."""

import torch


def unique_batch(batch: int, channels: int, height: int, width: int) -> torch.Tensor:
    """A float64 ``B×C×H×W`` batch holding ``0, 1, 2, ...``: no two pixels are equal."""
    return torch.arange(batch * channels * height * width, dtype=torch.float64).view(
        batch, channels, height, width
    )


def identity_labels(batch: int) -> tuple[torch.Tensor, int]:
    """Labels ``0..B-1`` (each image its own class), so the targets name each image's partner."""
    return torch.arange(batch), max(batch, 2)


def partner_of(targets: torch.Tensor, index: int) -> int:
    """The partner of image ``index`` read from identity-label targets (itself when unmixed)."""
    weights = targets[index].clone()
    weights[index] = 0
    return int(weights.argmax()) if weights.max() > 0 else index
