"""Stage 2: batch augmentation (CutMix, MixUp, flips, shifts) and the loss for soft targets."""

from augmenter.flips import RandomFlip
from augmenter.mixing import CutMix, MixUp, soft_cross_entropy
from augmenter.shifts import RandomShift

__all__ = ["CutMix", "MixUp", "RandomFlip", "RandomShift", "soft_cross_entropy"]
