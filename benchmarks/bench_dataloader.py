"""Data loader benchmarks: one epoch over the demo dataset's training images.

* Cached path: ``load_dataset`` with its cache already built (file listing, hash, memory-mapped
  uint8 array), then every image once in shuffled batches of 64 turned into float tensors.
  Reference: torchvision ``ImageFolder`` + PIL + ``ToTensor`` + ``DataLoader`` (same batch size,
  shuffled, ``num_workers=0``) over the same PNG files. Goal: at least 5× faster.
* Cold path: the same with an empty cache (every PNG decoded once and the cache written),
  against the same reference epoch: what the first epoch costs.

Both sides run alternately in this process with one torch thread; the best of the runs counts.
"""

import tempfile
from pathlib import Path

import torch

from benchmarks.common import Result, interleaved_best

BATCH_SIZE = 64


def _reference_epoch(train_dir: Path) -> int:
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import ToTensor

    dataset = ImageFolder(str(train_dir), transform=ToTensor())
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=0)
    return sum(len(y) for _, y in loader)


def _our_epoch(root: Path, cache_dir: Path | None = None, seed: int = 0) -> int:
    from dataloader import load_dataset

    ds = load_dataset(root, splits=("train",), val_fraction=0.0, cache_dir=cache_dir)
    return sum(len(y) for _, y in ds.train.batches(BATCH_SIZE, shuffle=True, seed=seed))


def run(quick: bool = False) -> list[Result]:
    from dataloader import synthesize

    per_class, repeat = (8, 1) if quick else (200, 5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-dataloader-") as tmp:
            root = synthesize(Path(tmp) / "demo", per_class, 1, size=64, seed=0)
            n = _our_epoch(root)  # builds the cache
            assert n == _reference_epoch(root / "train") == 3 * per_class
            cached, reference = interleaved_best(
                lambda: _our_epoch(root), lambda: _reference_epoch(root / "train"), repeat
            )
            counter = iter(range(1000))
            cold, reference_2 = interleaved_best(
                lambda: _our_epoch(root, cache_dir=Path(tmp) / f"cold-{next(counter)}"),
                lambda: _reference_epoch(root / "train"),
                repeat,
            )
    finally:
        torch.set_num_threads(threads)
    workload = f"{n} images, 64 px, batch {BATCH_SIZE}, shuffled, 0 workers"
    return [
        Result(
            name=f"loader epoch, cached uint8 vs ImageFolder+PIL+DataLoader ({workload})",
            ours=cached,
            reference=reference,
            unit="s",
            goal="≥ 5× faster (ratio ≥ 5)",
            note=f"{n / cached:,.0f} vs {n / reference:,.0f} images/s; ours includes listing "
            "and hashing the files",
        ),
        Result(
            name=f"loader first epoch, empty cache (decode + write) vs ImageFolder ({workload})",
            ours=cold,
            reference=reference_2,
            unit="s",
            goal="report: decoding once should cost about one reference epoch",
            note="every later epoch and run takes the cached path",
        ),
    ]
