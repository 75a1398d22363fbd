"""Stage 2: batch augmentation (CutMix, MixUp, flips) and the loss for soft targets."""

from augmenter.flips import RandomFlip
from augmenter.mixing import CutMix, MixUp, soft_cross_entropy

__all__ = ["CutMix", "MixUp", "RandomFlip", "soft_cross_entropy"]
