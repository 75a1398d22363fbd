"""DICOM as uint8 pixels: modality rescale, VOI window (else min/max), MONOCHROME1 inverted."""

import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_windowing

COLOUR_INTERPRETATIONS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR")


def dicom_header(path: Path) -> tuple[int, int, bool, str | None]:
    """``(height, width, is_colour, PatientID or None)`` from the header alone (the pixel data
    is not read)."""
    with warnings.catch_warnings():  # pydicom warns about odd files; broken ones are reported
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    colour = int(ds.get("SamplesPerPixel", 1)) > 1 or (
        ds.get("PhotometricInterpretation", "") in COLOUR_INTERPRETATIONS
    )
    patient = str(ds.get("PatientID", "") or "").strip() or None
    return int(ds.Rows), int(ds.Columns), colour, patient


def _to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def read_dicom(path: Path) -> np.ndarray:
    """The first frame of a DICOM file as uint8 ``H×W`` (grey) or ``H×W×3`` (colour).

    Grey images get the modality rescale (slope/intercept or LUT), then the first VOI window when
    the file has one (mapped onto 0–255 over the window's output range), else a min/max stretch;
    MONOCHROME1 (white = low values) is inverted so that bright always means high signal.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array  # colour comes back as RGB (YBR converted)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[0]
    interpretation = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if interpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    if pixels.ndim == 3:  # colour: stretch only when not already 8-bit
        if pixels.dtype == np.uint8:
            return pixels
        return _to_uint8(pixels, float(pixels.min()), float(pixels.max()))
    values = apply_modality_lut(pixels, ds)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        values = apply_windowing(values, ds)
        # The window's output range (y_min, y_max): what the most extreme inputs map to.
        low, high = apply_windowing(np.array([-1e30, 1e30]), ds)
        image = _to_uint8(values, float(low), float(high))
    else:
        image = _to_uint8(values, float(values.min()), float(values.max()))
    if interpretation == "MONOCHROME1":
        image = 255 - image
    return image
