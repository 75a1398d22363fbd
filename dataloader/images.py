"""Reading one image file (PNG, JPEG, DICOM) and bringing it to one size and channel count.

Decoding and ``conform`` live in ``mlpipeline_model`` (the code logged with every model), so
training images and images sent to a served model are prepared the same way.
"""

from pathlib import Path

import numpy as np

from dataloader.dicom import dicom_header, read_dicom
from mlpipeline_model import check_pixels, is_grey, open_image, pil_pixels, upright_size

PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PIL_SUFFIXES + DICOM_SUFFIXES


def read_header(path: Path) -> tuple[int, int, bool, str | None]:
    """``(height, width, is_colour, group)`` of an image file without decoding its pixels; the
    group is a DICOM file's PatientID (None for PNG/JPEG or when absent).

    Raises:
        ImageDecodeError: The file declares more than ``MAX_PIXELS`` pixels, so that such a
            file is skipped before its size could become the data set's.
    """
    if path.suffix.lower() in DICOM_SUFFIXES:
        header = dicom_header(path)
    else:
        with open_image(path) as im:
            header = *upright_size(im), not is_grey(im), None
    check_pixels(header[0], header[1])
    return header


def read_pixels(path: Path) -> np.ndarray:
    """Decode an image file to uint8 ``H×W`` (grey) or ``H×W×3`` (colour).

    16-bit and float greyscale images are stretched from their min/max onto 0–255; alpha is
    dropped; palette images become RGB (``mlpipeline_model.images``, shared with the served model).
    """
    if path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom(path)
    with open_image(path) as im:
        return pil_pixels(im)
