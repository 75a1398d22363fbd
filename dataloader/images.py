"""Reading one image file (PNG, JPEG, DICOM) and bringing it to one size and channel count.

Decoding and ``conform`` live in ``mlpipeline_model`` (the code logged with every model), so
training images and images sent to a served model are prepared the same way. A file's kind is
told from its first bytes, as the served model tells it, never from its name: a PNG named
``.dcm`` is read as a PNG, and DICOM files named without ``.dcm`` (``IM0001``, a UID) are found.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

import numpy as np

from dataloader.dicom import dicom_header, read_dicom
from mlpipeline_model import (
    HEAD_BYTES,
    ImageDecodeError,
    check_pixels,
    image_kind,
    is_grey,
    open_image,
    pil_pixels,
    shows_colour,
    stored_bits,
    undecodable,
    upright_size,
)

PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PIL_SUFFIXES + DICOM_SUFFIXES
NOT_PART_10 = (
    "a DICOM file without the Part 10 header (128-byte preamble, then 'DICM'); export it as a "
    "DICOM Part 10 file"
)

T = TypeVar("T")


def kind_of(path: str | os.PathLike) -> str | None:
    """``"dicom"``, ``"png"``, ``"jpeg"`` or None, from the file's first bytes."""
    with open(path, "rb") as fp:
        return image_kind(fp.read(HEAD_BYTES))


def _read(path: Path, dicom: Callable[[IO[bytes]], T], pil: Callable[[IO[bytes]], T]) -> T:
    """``dicom(fp)`` or ``pil(fp)`` by the file's first bytes, the file opened once."""
    with open(path, "rb") as fp:
        kind = image_kind(fp.read(HEAD_BYTES))
        fp.seek(0)
        if kind == "dicom":
            return dicom(fp)
        if kind is None and path.suffix.lower() in DICOM_SUFFIXES:
            raise ImageDecodeError(NOT_PART_10)
        try:
            return pil(fp)
        except (OSError, SyntaxError) as exc:  # UnidentifiedImageError too
            if getattr(exc, "errno", None) is not None:  # the disk or share failed, not the file
                raise
            raise undecodable(kind, exc) from exc


def _pil_header(fp: IO[bytes]) -> tuple[int, int, bool, None, None, int, int]:
    with open_image(fp) as im:
        return *upright_size(im), not is_grey(im), None, None, 1, stored_bits(im)


def _pil_pixels(fp: IO[bytes]) -> np.ndarray:
    with open_image(fp) as im:
        return pil_pixels(im)


def read_header(path: Path) -> tuple[int, int, bool, str | None, str | None, int, int]:
    """``(height, width, is_colour, group, modality, frames, bits)`` of an image file without
    decoding its pixels; the group is a DICOM file's PatientID (None for PNG/JPEG or when
    absent), the modality its Modality (``""`` when absent; None for PNG/JPEG), frames the
    frames it holds (a DICOM cine loop's NumberOfFrames; 1 for PNG/JPEG), bits the bits per
    sample it stores (``mlpipeline_model.stored_bits``: 16 for a 16-bit PNG, 8 for JPEG; a DICOM
    file's BitsStored).

    Raises:
        ImageDecodeError: The file declares more than ``MAX_PIXELS`` pixels, so that such a
            file is skipped before its size could become the data set's.
    """
    header = _read(path, dicom_header, _pil_header)
    check_pixels(header[0], header[1])
    return header


def read_pixels(path: Path) -> np.ndarray:
    """Decode an image file to uint8 ``H×W`` (grey) or ``H×W×3`` (colour).

    16-bit and float greyscale images are stretched onto 0–255 between percentiles of their
    values; alpha is dropped; palette images become RGB (``mlpipeline_model.images``, shared with
    the served model).
    """
    return _read(path, read_dicom, _pil_pixels)


COLOUR_CHECKS = 64  # colour-stored files decoded at most to tell a data set's channels


def holds_colour(path: Path) -> bool:
    """Whether the image file at ``path`` shows colour, not grey stored as RGB; False when it
    cannot be decoded (it is skipped when the data set is loaded)."""
    try:
        pixels = read_pixels(path)
    except Exception:  # any decoder error: the file is skipped (and listed) when decoded
        return False
    return shows_colour(pixels)


def any_colour(paths: list[Path]) -> bool:
    """Whether a data set whose files at ``paths`` are stored as colour (by their headers) is a
    colour data set: one of them shows colour (``holds_colour``). At most ``COLOUR_CHECKS``
    of them, spread evenly, are decoded, stopping at the first in colour: one file of a colour
    data set, every one checked of grey scans exported as RGB. A colour file among the others
    is noticed when the data set is decoded (``dataloader.folder``), which then reads it as
    colour."""
    step = max(1, len(paths) // COLOUR_CHECKS)
    return any(holds_colour(path) for path in paths[::step][:COLOUR_CHECKS])
