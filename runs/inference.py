"""Batched inference of the repository's services over many images, without gradients.

The trainer (validation), the evaluator (test split) and the explainer (sample choice,
embedding) call ``predict``. The predictor runs the logged model itself
(``mlpipeline_model.pyfunc``, which carries its own copy of the same steps: uint8 → [0, 1],
float64 softmax), as any user of the model does; ``tests/runs/test_packaging.py`` holds the two to
the same probabilities, bit for bit. Inputs are converted to float one batch at a time, so a
split of uint8 images never exists as one float tensor.
"""

from collections.abc import Iterable, Iterator
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mlpipeline_model import reference_of
from runs.preprocessing import Preprocessing

Output = Literal["proba", "logits", "embedding"]
Tta = Literal["none", "horizontal", "both"]
TTA_CHOICES = get_args(Tta)
"""Test-time augmentation: the mean softmax over the image and its flips (``horizontal``: + left-
right; ``both``: + up-down and both), the same flips as the trainer's ``--flip`` choices."""
BATCH_SIZE = 256  # images per inference batch unless a caller says otherwise
MAX_BATCH_SIZE = 4096  # the most the evaluator's API and CLI take (a batch of 224 px RGB: 2.5 GB)


def views(x: torch.Tensor, tta: str = "none") -> list[torch.Tensor]:
    """The batch ``N×C×H×W`` and its flipped copies for test-time augmentation ``tta``."""
    if tta not in TTA_CHOICES:
        raise ValueError(f"tta must be one of {', '.join(TTA_CHOICES)}, got {tta!r}")
    out = [x]
    if tta in ("horizontal", "both"):
        out.append(x.flip(3))
    if tta == "both":
        out += [x.flip(2), x.flip(2).flip(3)]
    return out


def batches(
    inputs: np.ndarray | torch.Tensor,
    pp: Preprocessing | None = None,
    batch_size: int = BATCH_SIZE,
    device: torch.device | str | None = None,
) -> Iterator[torch.Tensor]:
    """Model inputs of ``batch_size`` images at a time.

    Args:
        inputs: uint8 ``N×H×W×C`` images (needs ``pp``) or a float ``N×C×H×W`` tensor in [0, 1].
        pp: The run's preprocessing, to turn uint8 images into tensors.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(inputs, np.ndarray):
        if pp is None:
            raise ValueError("uint8 images need the run's Preprocessing to become model inputs")
        convert = pp.to_tensor
    else:
        convert = torch.as_tensor
    for start in range(0, len(inputs), batch_size):
        x = convert(inputs[start : start + batch_size])
        yield x if device is None else x.to(device, non_blocking=True)


def predict(
    model: nn.Module,
    inputs: Iterable[torch.Tensor],
    output: Output = "proba",
    progress: bool | str = False,
    total: int | None = None,
    tta: str = "none",
    ood: list[np.ndarray] | None = None,
) -> torch.Tensor:
    """Run ``model`` in eval mode over ``inputs`` (batches, see ``batches``), on the CPU out.

    Args:
        output: ``"proba"``: softmax probabilities (float64, so that metrics and calibration
            bins do not suffer float32 rounding); ``"logits"``: float32 logits;
            ``"embedding"``: ``model.embed`` features (float32, ``N×F``).
        progress: Show a tqdm bar (a string names it).
        total: Number of batches, for the bar.
        tta: With ``output="proba"``, the mean probabilities over ``views(x, tta)``.
        ood: With ``output="proba"``, a list that receives each batch's out-of-distribution
            scores (``mlpipeline_model.ood``) of the image as given (never a flipped view), from
            the same pass, as the logged model answers them; left empty for a model without
            the check.

    Returns:
        ``N×K`` (``N×F`` for embeddings); an empty tensor for no input.
    """
    if tta != "none" and output != "proba":
        raise ValueError("test-time augmentation averages probabilities: use output='proba'")
    model.eval()
    reference = reference_of(model) if ood is not None else None
    desc = progress if isinstance(progress, str) else "predicting"
    parts = []
    with torch.inference_mode():
        hidden = None if progress else True  # None: no bar where stderr is no terminal (a log)
        for x in tqdm(inputs, desc=desc, unit="batch", total=total, disable=hidden):
            if output == "embedding":
                parts.append(model.embed(x).float().cpu())
                continue
            if output == "logits":
                parts.append(model(x).float().cpu())
                continue
            probs = []
            for i, v in enumerate(views(x, tta)):
                if i == 0 and ood is not None and reference is not None:
                    features, logits = model.features_and_logits(v)
                    ood.append(reference.scores(features, v))
                else:
                    logits = model(v)
                probs.append(torch.softmax(logits.float().cpu().double(), dim=1))
            parts.append(torch.stack(probs).mean(0))
    return torch.cat(parts) if parts else torch.zeros(0)
