"""DICOM as uint8 pixels: modality rescale, VOI window (else a percentile stretch), MONOCHROME1
inverted (``mlpipeline_model.dicom``)."""

from pathlib import Path
from typing import IO

import numpy as np

from mlpipeline_model import (
    COLOUR_INTERPRETATIONS,
    ImageDecodeError,
    check_image,
    dicom_modality,
    dicom_pixels,
    frame_count,
    not_an_image,
    open_dicom,
)


def dicom_header(source: Path | IO[bytes]) -> tuple[int, int, bool, str | None, str, int, int]:
    """``(height, width, is_colour, PatientID or None, Modality, frames, BitsStored)`` from the
    header alone (the pixel data is not read); the Modality is ``""`` when the file names none,
    BitsStored falls back to BitsAllocated (0 when it names neither).

    Raises:
        ImageDecodeError: A DICOM file without an image (a DICOMDIR index, a structured report),
            or of a SOP class that is not an image (an RT dose grid, a segmentation).
    """
    ds = open_dicom(source, stop_before_pixels=True)  # broken files raise, and are reported
    check_image(ds, with_pixels=False)  # no Rows/Columns: refused here, with its own words
    if what := not_an_image(ds, with_pixels=False):  # an RT dose grid, a segmentation...
        raise ImageDecodeError(
            f"a DICOM object that is not an image ({what}): the served model refuses such files, "
            "so it is not trained on; leave it out"
        )
    colour = int(ds.get("SamplesPerPixel", 1)) > 1 or (
        ds.get("PhotometricInterpretation", "") in COLOUR_INTERPRETATIONS
    )
    patient = str(ds.get("PatientID", "") or "").strip() or None
    bits = _int(ds.get("BitsStored")) or _int(ds.get("BitsAllocated"))
    return (
        int(ds.Rows),
        int(ds.Columns),
        colour,
        patient,
        dicom_modality(ds),
        frame_count(ds),
        bits,
    )


def _int(value: object) -> int:
    """A header attribute as an int; 0 when absent, empty or malformed."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def read_dicom(source: Path | IO[bytes]) -> np.ndarray:
    """The first frame of a DICOM file as uint8 ``H×W`` (grey) or ``H×W×3`` (colour).

    See ``mlpipeline_model.dicom_pixels``: modality rescale, VOI window (else a percentile
    stretch), MONOCHROME1 inverted.
    """
    return dicom_pixels(open_dicom(source))
