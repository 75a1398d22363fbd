"""Random flips of a whole batch at once (one coin per image, no Python loop over images)."""

import torch


class RandomFlip:
    """Flip each image of a ``B×C×H×W`` batch left-right and/or up-down with probability ``p``.

    Args:
        horizontal: Flip left-right.
        vertical: Flip up-down (independent coin).
        p: Probability of each flip.
        generator: Source of randomness; the global torch RNG when ``None``.
    """

    def __init__(
        self,
        horizontal: bool = True,
        vertical: bool = False,
        p: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p is a probability and must lie in [0, 1], got {p}")
        self.dims = [d for d, on in ((-1, horizontal), (-2, vertical)) if on]
        self.p = p
        self.generator = generator

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"images must be a B×C×H×W batch, got shape {tuple(images.shape)}")
        for dim in self.dims:
            coin = torch.rand(images.shape[0], generator=self.generator) < self.p
            coin = coin.to(images.device).view(-1, 1, 1, 1)
            images = torch.where(coin, images.flip(dim), images)
        return images
