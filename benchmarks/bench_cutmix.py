"""Batch augmentation benchmarks (CutMix, shifts), each against a reference measured side by
side in this process.

* Our batch CutMix against ``torchvision.transforms.v2.CutMix`` on the same batch (demo-sized:
  64 RGB images of 64 px, 3 classes); goal: no slower (ratio ≥ 1).
* Our per-sample CutMix (a box per image, vectorized with masks) against the same reference, for
  information: it does more work than a batch-wide box.
* Per-sample CutMix (the trainer's default) as a share of one training step (SmallCNN forward,
  backward, AdamW step on that batch, on one thread); goal: at most 2 % of the step (ratio ≥ 1
  against 2 % of the step time).
* Our batch ``RandomShift`` (two gathers for the whole batch) against torchvision's
  ``v2.RandomCrop(size, padding=P)`` applied image by image, as a per-image dataset transform
  does it; goal: no slower (ratio ≥ 1).

Everything runs on one thread: the benchmark machine is shared, and oversubscribed OpenMP threads
stall, which would make every figure noise.
"""

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from augmenter import CutMix, RandomShift
from benchmarks.common import Result, interleaved_best
from runs import build_model

NUM_CLASSES = 3
THREADS = 1
SHIFT = 3


def _batch(batch: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
    return images, labels


def _loop(fn, images, labels, calls: int):
    def run() -> None:
        for _ in range(calls):
            fn(images, labels)

    return run


def _training_step(images: torch.Tensor, labels: torch.Tensor):
    model = build_model("smallcnn", 3, NUM_CLASSES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    targets = F.one_hot(labels, NUM_CLASSES).float()

    def step() -> None:
        loss = F.cross_entropy(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocator and kernels
    return step


def run(quick: bool = False) -> list[Result]:
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _measure(quick)
    finally:
        torch.set_num_threads(previous_threads)


def _measure(quick: bool) -> list[Result]:
    batch, size, calls, repeat = (16, 32, 20, 2) if quick else (64, 64, 200, 5)
    images, labels = _batch(batch, size)
    workload = f"{batch}×3×{size}×{size}"
    ours = CutMix(NUM_CLASSES, alpha=1.0, generator=torch.Generator().manual_seed(1))
    per_sample = CutMix(
        NUM_CLASSES, alpha=1.0, per_sample=True, generator=torch.Generator().manual_seed(1)
    )
    reference = v2.CutMix(num_classes=NUM_CLASSES, alpha=1.0)
    torch.manual_seed(0)

    t_ours, t_ref = interleaved_best(
        _loop(ours, images, labels, calls), _loop(reference, images, labels, calls), repeat
    )
    t_ours, t_ref = 1e3 * t_ours / calls, 1e3 * t_ref / calls
    t_per_sample, t_ref2 = interleaved_best(
        _loop(per_sample, images, labels, calls), _loop(reference, images, labels, calls), repeat
    )
    t_per_sample, t_ref2 = 1e3 * t_per_sample / calls, 1e3 * t_ref2 / calls

    step = _training_step(images, labels)
    steps = 1 if quick else 3
    t_step, t_mix = interleaved_best(  # the trainer's default: a box per image
        lambda: [step() for _ in range(steps)], _loop(per_sample, images, labels, calls), repeat
    )
    t_step, t_mix = 1e3 * t_step / steps, 1e3 * t_mix / calls
    share = 100 * t_mix / t_step

    shift = RandomShift(SHIFT, generator=torch.Generator().manual_seed(2))
    crop = v2.RandomCrop(size, padding=SHIFT)
    t_shift, t_crop = interleaved_best(
        _loop(lambda x, _: shift(x), images, labels, calls),
        _loop(lambda x, _: torch.stack([crop(image) for image in x]), images, labels, calls),
        repeat,
    )
    t_shift, t_crop = 1e3 * t_shift / calls, 1e3 * t_crop / calls
    return [
        Result(
            name=f"CutMix per batch vs v2.CutMix ({workload})",
            ours=t_ours,
            reference=t_ref,
            unit="ms",
            goal="no slower: ratio ≥ 1",
            note="same batch, alpha 1; ours gathers only the box of the partner images",
        ),
        Result(
            name=f"CutMix per sample (a box per image) vs v2.CutMix ({workload})",
            ours=t_per_sample,
            reference=t_ref2,
            unit="ms",
            goal="information (does more work)",
            note="vectorized masks, no loop over images",
        ),
        Result(
            name=f"per-sample CutMix vs 2 % of a SmallCNN step ({workload}, {THREADS} thread)",
            ours=t_mix,
            reference=0.02 * t_step,
            unit="ms",
            goal="≤ 2 % of a step: ratio ≥ 1",
            note=f"CutMix {t_mix:.2f} ms = {share:.2f} % of a {t_step:.0f} ms step",
        ),
        Result(
            name=f"RandomShift({SHIFT}) per batch vs v2.RandomCrop per image ({workload})",
            ours=t_shift,
            reference=t_crop,
            unit="ms",
            goal="no slower: ratio ≥ 1",
            note="same batch; an offset per image either way, black border",
        ),
    ]
