"""A deterministic synthetic demo dataset: dermoscopy-like RGB images of three lesion classes.

* ``nevus``: round or oval, regular sharp border, uniform brown, sometimes a darker centre.
* ``melanoma``: larger, irregular asymmetric border, variegated colours (dark brown, black,
  blue-grey, red), blurred edge.
* ``keratosis``: "stuck-on" look: sharp border, lighter yellow-brown, rough waxy texture with
  bright cyst-like dots.

Every image has a skin-coloured background with blotches, pixel noise, a lighting gradient,
vignetting and sometimes hairs. About a quarter of the images blend in the look of another class,
so the classes overlap: a small CNN learns them well but not perfectly. Each image is drawn from
its own random stream keyed by (seed, split, class, index), so the bytes depend only on those.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from common import atomic_replace_dir, atomic_write_json
from dataloader.errors import DataError

CLASS_NAMES = ("keratosis", "melanoma", "nevus")  # sorted: the loader's label order
SPLIT_IDS = {"train": 0, "test": 1}
LESIONS_FILE = "lesions.json"
BLEND_PROBABILITY = 0.25
BLEND_WEIGHT = (0.1, 0.55)
N_HARMONICS = 8  # border harmonics k = 2..9

_SKIN_LIGHT = np.array([236.0, 198.0, 172.0])
_SKIN_DARK = np.array([186.0, 136.0, 102.0])
_MELANOMA_PALETTE = np.array(
    [[72, 42, 28], [38, 28, 28], [92, 98, 120], [156, 78, 64], [132, 88, 60]], dtype=float
)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field of shape ``size×size``, roughly zero mean and unit std."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    field = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(field, dtype=np.float64)


def _shape_params(k: int, rng: np.random.Generator) -> np.ndarray:
    """Radius, edge width and border harmonic amplitudes of a lesion of class ``k``."""
    if k == 1:  # melanoma: large, irregular, blurred edge
        radius, edge = rng.uniform(0.17, 0.31), rng.uniform(0.012, 0.035)
        amps = rng.uniform(0.025, 0.11, N_HARMONICS) / np.sqrt(np.arange(1, N_HARMONICS + 1))
        amps[0] = rng.uniform(0.0, 0.22)
    elif k == 2:  # nevus: round or oval, smooth
        radius, edge = rng.uniform(0.13, 0.25), rng.uniform(0.008, 0.018)
        amps = rng.uniform(0.0, 0.025, N_HARMONICS)
        amps[0] = rng.uniform(0.0, 0.15)
    else:  # keratosis: mildly irregular, sharp "stuck-on" edge
        radius, edge = rng.uniform(0.15, 0.27), rng.uniform(0.005, 0.011)
        amps = rng.uniform(0.01, 0.05, N_HARMONICS)
        amps[0] = rng.uniform(0.0, 0.2)
    return np.concatenate([[radius, edge], amps])


def _colour_layer(k: int, size: int, rng: np.random.Generator, rho: np.ndarray) -> np.ndarray:
    """The lesion's colour (``size×size×3``, 0–255) for class ``k``; ``rho`` = relative radius."""
    if k == 1:  # melanoma: a mix of 2-5 palette colours in smooth patches
        n = int(rng.integers(2, 6))
        chosen = _MELANOMA_PALETTE[rng.choice(len(_MELANOMA_PALETTE), n, replace=False)]
        fields = np.stack([_smooth_noise(rng, size, int(rng.integers(3, 6))) for _ in range(n)])
        weights = np.exp(2.5 * fields)
        weights /= weights.sum(axis=0, keepdims=True)
        return np.einsum("nhw,nc->hwc", weights, chosen)
    if k == 2:  # nevus: one brown, optionally darker towards the centre
        brown = np.array([150.0, 100.0, 68.0]) + rng.uniform(0, 1) * np.array([-58, -42, -30])
        darken = 1.0 - rng.uniform(0.0, 0.18) * np.clip(1.0 - rho, 0.0, 1.0)
        return brown * darken[..., None] + rng.normal(0, 3, (size, size, 1))
    # keratosis: tan / yellow-brown with a rough waxy texture and bright dots
    tan = np.array([192.0, 152.0, 92.0]) + rng.uniform(0, 1) * np.array([-52, -46, -34])
    rough = _smooth_noise(rng, size, max(size // 3, 4)) * rng.uniform(9, 18)
    layer = tan + rough[..., None] + rng.normal(0, 5, (size, size, 1))
    dots = rng.random((size, size)) < rng.uniform(0.004, 0.015)
    layer[dots] = np.array([235.0, 222.0, 180.0])
    return layer


def _hair_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """Soft dark hairs as a ``size×size`` coverage map in [0, 1] (drawn at 2× then shrunk)."""
    n = rng.poisson(1.0)
    if n == 0:
        return np.zeros((size, size))
    big = Image.new("L", (2 * size, 2 * size), 0)
    draw = ImageDraw.Draw(big)
    t = np.linspace(0.0, 1.0, 24)[:, None]
    for _ in range(n):
        p0, p1, p2 = rng.uniform(-0.1, 1.1, (3, 2)) * 2 * size
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        draw.line([tuple(p) for p in curve], fill=255, width=int(rng.integers(1, 3)))
    small = big.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float64) / 255.0


def render_lesion(
    class_index: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one lesion image of class ``class_index`` (an index into ``CLASS_NAMES``).

    Returns:
        The image (uint8 ``size×size×3``) and the lesion mask (bool ``size×size``).
    """
    if class_index not in range(len(CLASS_NAMES)):
        raise ValueError(f"class_index must be 0..{len(CLASS_NAMES) - 1}, got {class_index}")
    yy, xx = np.mgrid[0:size, 0:size] / size

    # Sometimes borrow another class's look: the overlap between classes.
    partner, weight = class_index, 0.0
    if rng.random() < BLEND_PROBABILITY:
        partner = int((class_index + rng.integers(1, len(CLASS_NAMES))) % len(CLASS_NAMES))
        weight = rng.uniform(*BLEND_WEIGHT)
    params = (1 - weight) * _shape_params(class_index, rng) + weight * _shape_params(partner, rng)
    radius, edge, amps = params[0], params[1], params[2:]

    cx, cy = 0.5 + rng.uniform(-0.12, 0.12, 2)
    theta = np.arctan2(yy - cy, xx - cx)
    dist = np.hypot(yy - cy, xx - cx)
    ks = np.arange(2, 2 + N_HARMONICS)[:, None, None]
    phases = rng.uniform(0, 2 * np.pi, N_HARMONICS)[:, None, None]
    border = radius * (1.0 + (amps[:, None, None] * np.cos(ks * theta + phases)).sum(axis=0))
    alpha = 1.0 / (1.0 + np.exp(-(border - dist) / edge))
    rho = dist / np.maximum(border, 1e-6)

    lesion = (1 - weight) * _colour_layer(class_index, size, rng, rho)
    if weight:
        lesion += weight * _colour_layer(partner, size, rng, rho)

    skin = _SKIN_LIGHT + rng.uniform(0, 1) * (_SKIN_DARK - _SKIN_LIGHT) + rng.normal(0, 6, 3)
    blotch = _smooth_noise(rng, size, 4)[..., None] * np.array([7.0, 5.0, 5.0])
    image = (skin + blotch) * (1 - alpha[..., None]) + lesion * alpha[..., None]

    hair = _hair_mask(size, rng)[..., None] * rng.uniform(0.6, 0.9)
    image = image * (1 - hair) + np.array([45.0, 32.0, 26.0]) * hair

    angle = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0, 0.3) * ((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle))
    light -= rng.uniform(0, 0.5) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    image = image * light[..., None] + rng.normal(0, rng.uniform(2, 6), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), alpha > 0.5


def bounding_box(mask: np.ndarray) -> list[int]:
    """``[x0, y0, x1, y1]`` of the true pixels of ``mask`` (``x1``/``y1`` exclusive)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0, 0, 0, 0]
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def image_rng(seed: int, split: str, class_index: int, index: int) -> np.random.Generator:
    """The random stream of one image: independent of how many other images are drawn."""
    return np.random.default_rng([seed, SPLIT_IDS[split], class_index, index])


def write_split(
    root: Path, split: str, per_class: int, size: int, seed: int
) -> dict[str, list[int]]:
    """Write ``root/split/<class>/NNNN.png``; return relative path → lesion bounding box."""
    boxes: dict[str, list[int]] = {}
    for k, name in enumerate(CLASS_NAMES):
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(1, per_class + 1):
            image, mask = render_lesion(k, size, image_rng(seed, split, k, i))
            rel = f"{split}/{name}/{i:04d}.png"
            Image.fromarray(image).save(root / rel, optimize=False)
            boxes[rel] = bounding_box(mask)
    return boxes


def synthesize(
    out: str | Path,
    train_per_class: int = 200,
    test_per_class: int = 50,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write the demo dataset to ``out/train/<class>/``, ``out/test/<class>/`` and ``lesions.json``.

    The folders are built aside and moved into place whole; other files in ``out`` are left alone.
    A previous demo dataset in ``out`` (recognised by its ``lesions.json``) is replaced, but any
    other ``train/`` or ``test/`` folder is never overwritten.

    Args:
        out: Output folder (created when missing).
        train_per_class: Training images per class.
        test_per_class: Test images per class.
        size: Image width and height in pixels.
        seed: The same seed gives byte-identical files.

    Returns:
        The output folder.

    Raises:
        DataError: For counts below 1, a size below 16 px, or an ``out`` that already holds
            a dataset that is not a demo dataset.
    """
    out = Path(out)
    if train_per_class < 1 or test_per_class < 1:
        raise DataError(
            f"train_per_class and test_per_class must be at least 1, got {train_per_class} "
            f"and {test_per_class}"
        )
    if size < 16:
        raise DataError(f"size must be at least 16 pixels, got {size}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; pass a folder for the demo dataset")
    previous_demo = (out / LESIONS_FILE).is_file()
    for split in SPLIT_IDS:
        target = out / split
        if target.exists() and any(target.iterdir()) and not previous_demo:
            raise DataError(
                f"{target} already holds images that are not a demo dataset; choose an empty "
                "folder for --out or move that dataset away first"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out, prefix=".synth-") as tmp:
            boxes: dict[str, list[int]] = {}
            counts = {"train": train_per_class, "test": test_per_class}
            for split, per_class in counts.items():
                boxes.update(write_split(Path(tmp), split, per_class, size, seed))
            for split in SPLIT_IDS:
                atomic_replace_dir(Path(tmp) / split, out / split)
            atomic_write_json(out / LESIONS_FILE, boxes)
            os.chmod(out / LESIONS_FILE, 0o644)  # readable like the images, by every service
    except OSError as exc:
        raise DataError(f"cannot write the demo dataset to {out}: {exc.strerror or exc}") from exc
    return out
