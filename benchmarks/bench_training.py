"""Training-throughput benchmarks, each against a reference measured side by side in this process.

Workload: the demo dataset (3 classes of RGB PNGs, written by ``dataloader.synthesize``), SmallCNN,
AdamW, the same batch size, one epoch per timing, CutMix on every batch (ours: a box per image,
the trainer's default) and random flips.

* Ours (the trainer's ``train_one_epoch`` on the loader's in-memory uint8 arrays) against a plain
  torchvision loop over the same files: ``ImageFolder`` + PIL + ``DataLoader`` + ``v2.CutMix``;
  goal in the issue: ≥ 3× images/s.
* The input pipelines alone (the same loops without the model): what the in-memory design buys.
* Ours against pure compute (forward, backward, step on float batches already in memory, no
  augmentation); goal: ≥ 0.85× images/s.

The loader decodes the PNGs once into its cache; that one-time cost is reported in the notes and
not counted per epoch. Everything runs on one thread: the benchmark machine is shared, and
oversubscribed OpenMP threads stall (the ratios hold for any fixed thread count).
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from augmenter import CutMix, RandomFlip, soft_cross_entropy
from benchmarks.common import Result, best_time
from dataloader import load_dataset, synthesize
from runs import Preprocessing, build_model
from trainer.engine import Batches, split_batches, train_one_epoch

THREADS = 1


def _setup(root: Path, per_class: int, size: int):
    synthesize(root, train_per_class=per_class, test_per_class=1, size=size)
    started = time.perf_counter()
    dataset = load_dataset(root, splits=("train",))
    load_time = time.perf_counter() - started
    train = dataset.train
    preprocessing = Preprocessing(
        image_size=dataset.image_size,
        channels=dataset.channels,
        class_names=dataset.class_names,
        mean=dataset.stats["mean"],
        std=dataset.stats["std"],
    )
    return Batches(train.images, train.labels, preprocessing.to_tensor), load_time


def _step(model, optimizer):
    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        loss = soft_cross_entropy(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _interleaved_best(functions: list, repeat: int) -> list[float]:
    """Best time of each function over ``repeat`` rounds that call each once, in turn."""
    times = [[best_time(fn, 1) for fn in functions] for _ in range(repeat)]
    return [min(column) for column in zip(*times, strict=True)]


def run(quick: bool = False) -> list[Result]:
    per_class, size, batch, repeat = (4, 32, 4, 1) if quick else (64, 64, 64, 7)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
            return _measure(Path(tmp) / "demo", per_class, size, batch, repeat)
    finally:
        torch.set_num_threads(previous_threads)


def _measure(root: Path, per_class: int, size: int, batch: int, repeat: int) -> list[Result]:
    data, load_time = _setup(root, per_class, size)
    n = len(data)
    model = build_model("smallcnn", 3, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = _step(model, optimizer)
    generator = torch.Generator().manual_seed(0)
    cutmix = CutMix(3, per_sample=True, generator=generator)  # the trainer's default
    flip = RandomFlip(generator=generator)
    device = torch.device("cpu")

    def ours() -> None:
        order = torch.randperm(n, generator=generator).tolist()
        train_one_epoch(model, soft_cross_entropy, optimizer, data, order, batch, device, cutmix,
                        flip, progress=False)  # fmt: skip

    folder = ImageFolder(
        str(root / "train"),
        transform=v2.Compose(
            [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.RandomHorizontalFlip()]
        ),
    )
    loader = DataLoader(folder, batch_size=batch, shuffle=True, num_workers=0)
    reference_cutmix = v2.CutMix(num_classes=3)

    def reference() -> None:
        model.train()
        for images, labels in loader:
            step(*reference_cutmix(images, labels))

    def ours_input() -> None:
        order = torch.randperm(n, generator=generator).numpy()
        for index in split_batches(order, batch):
            images, labels = data.get(index, device)
            cutmix(flip(images), labels)

    def reference_input() -> None:
        for images, labels in loader:
            reference_cutmix(images, labels)

    batches = [
        (data.get(index, device)[0], F.one_hot(torch.from_numpy(data.labels[index]), 3).float())
        for index in split_batches(np.arange(n), batch)
    ]

    def pure() -> None:
        model.train()
        for images, targets in batches:
            step(images, targets)

    ours()  # warm-up: allocator, kernels, PIL plugins
    reference()
    # All three loops alternate within each round, so that load on the shared machine hits each.
    t_ours, t_ref, t_pure = _interleaved_best([ours, reference, pure], repeat)
    t_in, t_ref_in = _interleaved_best([ours_input, reference_input], repeat)
    workload = f"{n} demo PNGs {size}px, batch {batch}"
    return [
        Result(
            name=f"training epoch vs ImageFolder+PIL+DataLoader+v2.CutMix ({workload})",
            ours=n / t_ours,
            reference=n / t_ref,
            unit="images/s",
            goal="ratio ≥ 3 (issue)",
            note=f"SmallCNN, {THREADS} thread; loader's one-time decode {load_time:.2f} s "
            "excluded; compute dominates both loops",
            higher_is_better=True,
        ),
        Result(
            name=f"input pipeline alone (batches + flips + CutMix, no model; {workload})",
            ours=n / t_in,
            reference=n / t_ref_in,
            unit="images/s",
            goal="ratio ≥ 3",
            note="in-memory uint8 index vs PIL decode + collate per epoch",
            higher_is_better=True,
        ),
        Result(
            name=f"training epoch vs pure compute on in-memory tensors ({workload})",
            ours=n / t_ours,
            reference=n / t_pure,
            unit="images/s",
            goal="ratio ≥ 0.85",
            note="pure: forward, backward, AdamW step on prebuilt float batches, no augmentation",
            higher_is_better=True,
        ),
    ]
