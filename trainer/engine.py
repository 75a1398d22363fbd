"""One training epoch, one evaluation pass, optimizers and learning-rate schedules.

Batches come straight from the loader's in-memory uint8 arrays: an index permutation picks the
images, ``Preprocessing.to_tensor`` turns them into float ``[0, 1]`` tensors, flips, shifts and
CutMix run on the whole batch. No image is decoded during training.
"""

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, roc_auc_score
from torch import nn
from torch.optim import lr_scheduler
from tqdm import tqdm

from runs import inference

Mixer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Batches:
    """A split held in memory: uint8 ``N×H×W×C`` images and int64 labels.

    Attributes:
        images: The loader's ``ImageSet.images``.
        labels: The loader's ``ImageSet.labels``.
        to_tensor: ``Preprocessing.to_tensor`` of the run.
    """

    images: np.ndarray
    labels: np.ndarray
    to_tensor: Callable[[np.ndarray], torch.Tensor]

    def __len__(self) -> int:
        return len(self.labels)

    def get(self, index: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float ``B×C×H×W`` in ``[0, 1]``, contiguous) and labels of ``index``."""
        images = self.to_tensor(self.images[index]).contiguous()
        labels = torch.from_numpy(self.labels[index])
        return images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def split_batches(indices: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Consecutive batches of ``indices``; a last batch of one image is dropped (BatchNorm)."""
    indices = np.asarray(indices, dtype=np.int64)
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()
    return batches


def train_one_epoch(
    model: nn.Module,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    data: Batches,
    indices: Sequence[int],
    batch_size: int,
    device: torch.device,
    mixer: Mixer | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    description: str = "train",
    progress: bool = True,
    on_step: Callable[[], None] | None = None,
) -> tuple[float, float, int]:
    """Train on ``indices`` once; ``on_step`` runs after every optimizer step (e.g. EMA).

    Returns:
        Sum of per-image losses, number of correctly classified images (against the unmixed
        labels) and number of images seen, so that processes can add them up.
    """
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    batches = split_batches(indices, batch_size)
    # disable=None: no bar where stderr is not a terminal (a container's log, a file), whose
    # carriage-return updates would pile up there as one long line per epoch
    bar = tqdm(
        batches,
        desc=description,
        unit="batch",
        leave=False,
        disable=None if progress else True,
        file=sys.stderr,
    )
    for index in bar:
        images, labels = data.get(index, device)
        if augment is not None:
            images = augment(images)
        targets = labels
        if mixer is not None:
            images, targets = mixer(images, labels)
        logits = model(images)
        loss = criterion(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step()
        loss_sum += loss.item() * len(index)
        correct += int((logits.argmax(dim=1) == labels).sum())
        seen += len(index)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
    return loss_sum, correct, seen


def auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC: positive-class probability for two classes, one-vs-rest macro for more.

    NaN when it is undefined (a class missing from ``labels``).
    """
    num_classes = probabilities.shape[1]
    if len(np.unique(labels)) < num_classes:
        return math.nan
    if num_classes == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    return float(
        roc_auc_score(
            labels, probabilities, multi_class="ovr", average="macro", labels=range(num_classes)
        )
    )


def inputs_of(data: Batches, device: torch.device, batch_size: int = 256) -> Iterator[torch.Tensor]:
    """The model inputs of all of ``data`` in order, ``batch_size`` at a time (for inference:
    every image, a lone last one too, which only training's ``split_batches`` drops)."""
    starts = range(0, len(data), batch_size)
    return (data.get(np.arange(i, min(i + batch_size, len(data))), device)[0] for i in starts)


def evaluate(
    model: nn.Module, data: Batches, device: torch.device, batch_size: int = 256
) -> dict[str, float]:
    """``loss``, ``accuracy`` and ``auc`` of the model on ``data``."""
    logits = inference.predict(model, inputs_of(data, device, batch_size), output="logits")
    labels = torch.from_numpy(data.labels)
    probabilities = torch.softmax(logits, dim=1).numpy()
    return {
        "loss": float(F.cross_entropy(logits, labels)),
        "accuracy": float(accuracy_score(data.labels, probabilities.argmax(axis=1))),
        "auc": auc(data.labels, probabilities),
    }


def build_optimizer(
    name: str, params, lr: float, weight_decay: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum), Adam or AdamW."""
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    epochs: int,
    warmup_epochs: int = 0,
    warmup_decay: float = 0.1,
    step_size: int = 10,
    gamma: float = 0.1,
) -> lr_scheduler.LRScheduler:
    """A per-epoch schedule (cosine, step or none) after an optional linear warm-up."""
    main_epochs = max(1, epochs - warmup_epochs)
    if schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_epochs)
    elif schedule == "step":
        main = lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    elif schedule == "none":
        main = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    else:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}")
    if warmup_epochs <= 0:
        return main
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=warmup_decay, total_iters=warmup_epochs)
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[warmup_epochs])
