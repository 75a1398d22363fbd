"""Data loader benchmarks: one epoch over the demo dataset's training images.

* Cached path: ``load_dataset`` with its cache already built (file listing, hash, memory-mapped
  uint8 array), then every image once in shuffled batches of 64 turned into float tensors.
  Reference: torchvision ``ImageFolder`` + PIL + ``ToTensor`` + ``DataLoader`` (same batch size,
  shuffled, ``num_workers=0``) over the same PNG files. Goal: at least 5× faster.
* Cold path: the same with an empty cache (every PNG decoded once and the cache written),
  against the same reference epoch: what the first epoch costs.
* Header pass: ``read_header`` (size as shown by the EXIF orientation, colour, pixel limit) over
  PNGs of 1024² px, against PIL's bare ``Image.open(f).size``. Before the dataset's size is
  chosen every file's header is read; decoding a PNG there (Pillow's ``getexif`` does when a
  PNG has no EXIF) made this pass 250× slower. Goal: at most 2× the bare header read.

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


def _header_pass(files: list[Path]) -> int:
    from dataloader.images import read_header

    return sum(read_header(f)[0] for f in files)


def _bare_headers(files: list[Path]) -> int:
    from PIL import Image

    total = 0
    for f in files:
        with Image.open(f) as im:
            total += im.size[1]
    return total


def _header_files(folder: Path, count: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (1024, 1024), dtype=np.uint8)
    files = [folder / f"{i:04d}.png" for i in range(count)]
    for f in files:
        Image.fromarray(noise).save(f)
    return files


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
            files = _header_files(Path(tmp) / "headers", 10 if quick else 50)
            assert _header_pass(files) == _bare_headers(files) == 1024 * len(files)
            headers, bare = interleaved_best(
                lambda: _header_pass(files), lambda: _bare_headers(files), repeat
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
        Result(
            name=f"header pass, read_header vs PIL's Image.open().size ({len(files)} PNGs, 1024²)",
            ours=headers,
            reference=bare,
            unit="s",
            goal="at most 2× the bare header read (ratio ≥ 0.5)",
            note=f"{headers / len(files) * 1e3:.2f} vs {bare / len(files) * 1e3:.2f} ms per file",
        ),
    ]
