"""DICOM as uint8 pixels: modality rescale, VOI window (else min/max), MONOCHROME1 inverted."""

from pathlib import Path

import numpy as np

from mlpipeline_model import COLOUR_INTERPRETATIONS, dicom_pixels, open_dicom


def dicom_header(path: Path) -> tuple[int, int, bool, str | None]:
    """``(height, width, is_colour, PatientID or None)`` from the header alone (the pixel data
    is not read)."""
    ds = open_dicom(path, stop_before_pixels=True)  # broken files raise, and are reported
    colour = int(ds.get("SamplesPerPixel", 1)) > 1 or (
        ds.get("PhotometricInterpretation", "") in COLOUR_INTERPRETATIONS
    )
    patient = str(ds.get("PatientID", "") or "").strip() or None
    return int(ds.Rows), int(ds.Columns), colour, patient


def read_dicom(path: Path) -> np.ndarray:
    """The first frame of a DICOM file as uint8 ``H×W`` (grey) or ``H×W×3`` (colour).

    See ``mlpipeline_model.dicom_pixels``: modality rescale, VOI window (else min/max),
    MONOCHROME1 inverted.
    """
    return dicom_pixels(open_dicom(path))
