"""Reading one image file (PNG, JPEG, DICOM) and bringing it to one size and channel count."""

from pathlib import Path

import numpy as np
from PIL import Image

from dataloader.dicom import dicom_header, read_dicom

PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PIL_SUFFIXES + DICOM_SUFFIXES
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_header(path: Path) -> tuple[int, int, bool, str | None]:
    """``(height, width, is_colour, group)`` of an image file without decoding its pixels; the
    group is a DICOM file's PatientID (None for PNG/JPEG or when absent)."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return dicom_header(path)
    with Image.open(path) as im:
        return im.height, im.width, im.mode not in GREY_MODES, None


def read_pixels(path: Path) -> np.ndarray:
    """Decode an image file to uint8 ``H×W`` (grey) or ``H×W×3`` (colour).

    16-bit and float greyscale images are stretched from their min/max onto 0–255; alpha is
    dropped; palette images become RGB.
    """
    if path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom(path)
    with Image.open(path) as im:
        im.load()
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            values = np.asarray(im, dtype=np.float64)
            low, high = float(values.min()), float(values.max())
            scale = 255.0 / (high - low) if high > low else 0.0
            return np.clip(np.rint((values - low) * scale), 0, 255).astype(np.uint8)
        if im.mode in GREY_MODES:
            return np.asarray(im.convert("L"))
        return np.asarray(im.convert("RGB"))


def conform(pixels: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """Resize (PIL bilinear, antialiased) to ``size`` = (H, W) and convert grey↔RGB.

    Returns:
        uint8 ``H×W×channels``.
    """
    im = Image.fromarray(pixels)
    if channels == 1 and im.mode != "L":
        im = im.convert("L")
    elif channels == 3 and im.mode != "RGB":
        im = im.convert("RGB")
    if (im.height, im.width) != tuple(size):
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    out = np.asarray(im, dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out
