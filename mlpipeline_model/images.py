"""Decoding images (PNG, JPEG, DICOM) to uint8 pixels and bringing them to the model's size.

The dataloader uses these functions for training data and the logged model for requests, so a
served image is prepared exactly like a training image, as long as both run the same version of
this code: a process that imported the repository's copy (the predictor, evaluator, explainer)
decodes with it, not with the copy logged with an older model. ``DECODING_VERSION``
(``mlpipeline_model.pixels``) tells them apart (``decoding_note``). DICOM files: ``.dicom``.
"""

import io
import os
import re
import warnings
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from mlpipeline_model.dicom import dicom_pixels, open_dicom
from mlpipeline_model.pixels import (
    TOO_LARGE,
    ImageDecodeError,
    check_pixels,
    declared_too_large,
    robust_range,
    to_uint8,
)

GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
PIL_FORMATS = ("PNG", "JPEG", "MPO")  # MPO: a JPEG with extra frames (many phone cameras)


def open_image(source: str | os.PathLike | IO[bytes]) -> Image.Image:
    """``Image.open`` for every reader (dataloader and served model): an image over Pillow's own
    decompression-bomb limit is the same ``ImageDecodeError`` as one over ``MAX_PIXELS``, and
    only PNG and JPEG are opened (a GIF or TIFF named ``.png`` is refused alike everywhere)."""
    try:
        # Pillow warns on stderr of images over its limit (half its refusal's): ``check_pixels``
        # refuses them in our words. Only that category is ignored; ``catch_warnings`` is not
        # thread-safe (as the DICOM reader's is not), so a warning of another thread decoding
        # at the same moment may go unshown, never raised. A filter set once at import would
        # avoid that, but a caller's own filters (``simplefilter("always")``) override it.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
            im = Image.open(source)
    except Image.DecompressionBombError as exc:  # raised on opening, from the header
        declared = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's wording: ours instead
        raise ImageDecodeError(
            declared_too_large(int(declared[1])) if declared else f"the image {TOO_LARGE}"
        ) from exc
    except ValueError as exc:  # a text or ICC profile chunk before the pixels inflates too far
        _check_metadata(exc)
        raise
    if im.format not in PIL_FORMATS:
        im.close()
        raise ImageDecodeError(f"{im.format} images are not accepted; send PNG, JPEG or DICOM")
    return im


def _check_metadata(exc: ValueError) -> None:
    """Raise our message for Pillow's refusal of a PNG text or ICC profile chunk (zTXt, iTXt,
    iCCP) that inflates past ``PngImagePlugin.MAX_TEXT_CHUNK``; return for any other error."""
    if "MAX_TEXT_CHUNK" not in str(exc) and "MAX_TEXT_MEMORY" not in str(exc):
        return
    raise ImageDecodeError(
        "the PNG's metadata (a compressed text or ICC profile chunk) inflates to more than the "
        f"{PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MiB allowed per chunk "
        f"({PngImagePlugin.MAX_TEXT_MEMORY // 2**20} MiB in all); save the image again "
        "without its metadata"
    ) from exc


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1–8) from the file's header, without decoding its pixels.

    Pillow's ``getexif`` decodes a whole PNG that has no eXIf chunk before its pixel data (looking
    for one after it): 60 ms for a 2048² PNG, where reading its header takes microseconds. The
    PNG specification puts eXIf before the pixel data, so only such a chunk counts, for the size
    read from the header and the decoded pixels alike.
    """
    try:
        if im.format == "PNG":
            raw = im.info.get("exif")  # read before load(), which adds one after the pixels
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = im.getexif()
        return int(exif.get(ExifTags.Base.Orientation, 1))
    except Exception:  # a malformed EXIF block: take the pixels as stored
        return 1


def is_grey(im: Image.Image) -> bool:
    """Whether ``im`` holds grey values only, judged from its header: a grey mode (a 16-bit
    grey+alpha PNG too, which Pillow opens as RGBA), or a palette whose every entry is grey (what
    many PACS and converters write for 8-bit grey images)."""
    if im.mode in GREY_MODES or _rawmode(im) == GREY_ALPHA_16:
        return True
    if im.mode != "P" or im.palette is None:
        return False
    step = len(im.palette.mode)  # "RGB" or "RGBA" entries
    raw = np.frombuffer(bytes(im.palette.palette), dtype=np.uint8)
    entries = raw[: len(raw) // step * step].reshape(-1, step)
    return bool((entries[:, 0] == entries[:, 1]).all() and (entries[:, 1] == entries[:, 2]).all())


# Pillow opens 16-bit colour and grey+alpha PNGs as 8-bit RGB/RGBA keeping each sample's high
# byte only (900–1200 became 2 levels). Their data is unpacked again (``_deep_png``), by
# unpackers of the same bits per pixel, so that Pillow undoes the PNG row filters alike: the
# little-endian one takes the low bytes, and a grey+alpha pixel's 4 bytes come whole as "RGBA".
LOW_BYTES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}
GREY_ALPHA_16 = "LA;16B"
STRIP_PIXELS = 1_000_000  # pixels of a decoded 16-bit PNG copied out of Pillow at a time
# What ImageOps.exif_transpose does for each EXIF orientation.
TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _rawmode(im: Image.Image) -> str | None:
    """How the file stores ``im``'s pixels (Pillow's rawmode of its one tile), before load()."""
    tile = im.tile[0] if len(im.tile) == 1 else None
    return tile.args if tile is not None and isinstance(tile.args, str) else None


STRETCHED_MODES = ("I", "I;16", "I;16B", "I;16L", "F")  # deep grey: stretched by ``pil_pixels``


def stored_bits(im: Image.Image) -> int:
    """Bits per sample of ``im`` as its file stores them, as far as decoding tells them apart
    (before ``load()``, from the header): 16 for a 16-bit PNG (grey, colour or grey+alpha) and
    32 for a float image, which ``pil_pixels`` stretches onto 0–255 (``robust_range``); 1 for a
    bilevel image; else 8 (JPEG, 8-bit or fewer grey, palette, RGB), read as stored."""
    if im.mode == "F":
        return 32
    if im.mode in STRETCHED_MODES or (
        im.format == "PNG" and _rawmode(im) in (*LOW_BYTES, GREY_ALPHA_16)
    ):
        return 16
    return 1 if im.mode == "1" else 8


def _decoded_rows(im: Image.Image, unpacker: str) -> Iterator[tuple[slice, np.ndarray]]:
    """``im``'s file decoded again with its samples unpacked by ``unpacker``, as uint8 arrays of
    whole rows (with the rows they are), about ``STRIP_PIXELS`` at a time.

    The file is read from ``im``'s own file object (no copy of its bytes); an array of the whole
    image would be a copy of it all, two while Pillow joins its bytes (a 40-megapixel RGB image:
    360 MB more than its strips). The decoded image is let go once the last strip is taken.
    """
    im.fp.seek(0)  # Image.open read the file from its start too
    with Image.open(im.fp) as again:  # a file object it was given: left open
        again.tile = [again.tile[0]._replace(args=unpacker)]
        try:
            again.load()
        except ValueError as exc:  # a text chunk after the pixels inflates too far
            _check_metadata(exc)
            raise
        rows = max(1, STRIP_PIXELS // max(1, again.width))
        for top in range(0, again.height, rows):
            bottom = min(top + rows, again.height)
            yield slice(top, bottom), np.asarray(again.crop((0, top, again.width, bottom)))


def _deep_png(im: Image.Image) -> np.ndarray | None:
    """The 16-bit samples of a 16-bit colour (H×W×3) or grey+alpha (H×W) PNG, alpha dropped,
    read before ``im.load()`` by decoding its file again; None for any other image.

    The high bytes are written into the 16-bit result a strip of rows at a time, shifted in
    place, and the low bytes merged into it alike: a 40-megapixel RGB PNG grew the process by
    about 740 MB with the file's bytes copied, whole-image copies and a temporary per step,
    about 400 MB now (the result, 240 MB, and Pillow's 160 MB of the decoded file).
    """
    rawmode = _rawmode(im)
    if im.format != "PNG" or (rawmode not in LOW_BYTES and rawmode != GREY_ALPHA_16):
        return None
    if rawmode == GREY_ALPHA_16:
        grey = np.empty((im.height, im.width), dtype=np.uint16)
        # Its 4 bytes a pixel come whole as "RGBA": grey high, grey low, alpha high, alpha low.
        for rows, strip in _decoded_rows(im, "RGBA"):
            grey[rows] = strip[..., 0]
            grey[rows] <<= 8
            grey[rows] |= strip[..., 1]
        return grey
    colour = np.empty((im.height, im.width, 3), dtype=np.uint16)
    for rows, strip in _decoded_rows(im, rawmode):
        colour[rows] = strip[..., :3]
    colour <<= 8
    for rows, strip in _decoded_rows(im, LOW_BYTES[rawmode]):
        colour[rows] |= strip[..., :3]
    return colour


def _stretch_deep(values: np.ndarray, orientation: int) -> np.ndarray:
    """16-bit samples onto 0–255 by one stretch over all channels (their colour balance kept),
    then turned upright."""
    pixels = to_uint8(values, *robust_range(values))
    if orientation in TRANSPOSES:
        pixels = np.asarray(Image.fromarray(pixels).transpose(TRANSPOSES[orientation]))
    return pixels


def upright_size(im: Image.Image) -> tuple[int, int]:
    """(height, width) of ``im`` as shown: swapped when its EXIF orientation turns it by 90°."""
    turned = _orientation(im) in (5, 6, 7, 8)
    return (im.width, im.height) if turned else (im.height, im.width)


MAX_JPEG_SCANS = 100
"""Most scans a progressive JPEG may hold (encoders write about 10): each scan is decoded over
the whole image, so a 52 KB file repeating one scan 2,000 times cost 5 s of CPU to decode."""


def _check_scans(im: Image.Image) -> None:
    """Refuse a progressive JPEG of more than ``MAX_JPEG_SCANS`` scans (its SOS markers: inside
    scan data a 0xFF byte is always followed by 0x00, so the count is exact but for those of an
    embedded EXIF thumbnail, a few)."""
    if im.format != "JPEG" or not (im.info.get("progressive") or im.info.get("progression")):
        return
    at = im.fp.tell()
    im.fp.seek(0)
    scans = im.fp.read().count(b"\xff\xda")
    im.fp.seek(at)
    if scans > MAX_JPEG_SCANS:
        raise ImageDecodeError(
            f"the JPEG file holds {scans:,} scans, more than the {MAX_JPEG_SCANS} a progressive "
            "JPEG needs (encoders write about 10), each decoded over the whole image: save the "
            "image again as a baseline JPEG or a PNG"
        )


def pil_pixels(im: Image.Image) -> np.ndarray:
    """A PIL image as uint8 ``H×W`` (grey) or ``H×W×3`` (colour), upright.

    A camera's EXIF orientation is applied, so that photographs are learned and served the way
    viewers show them; 16-bit images (grey, colour, grey+alpha) and float greyscale ones are
    stretched onto 0–255 between the percentiles of ``robust_range`` (a colour image's channels
    by one stretch); alpha is dropped; palette images become RGB, or grey when
    every palette entry is.

    Raises:
        ImageDecodeError: The image declares more than ``MAX_PIXELS`` pixels, or is a
            progressive JPEG of more than ``MAX_JPEG_SCANS`` scans.
    """
    check_pixels(im.height, im.width)
    _check_scans(im)
    orientation = _orientation(im)  # before load(), as upright_size reads it
    grey = is_grey(im)
    deep = _deep_png(im)
    if deep is not None:
        return _stretch_deep(deep, orientation)
    try:
        im.load()
    except ValueError as exc:  # a text chunk after the pixels inflates too far
        _check_metadata(exc)
        raise
    if orientation in range(2, 9):
        im = ImageOps.exif_transpose(im)
    if im.mode in STRETCHED_MODES:
        values = np.asarray(im)  # native width: to_uint8 converts a block of rows at a time
        return to_uint8(values, *robust_range(values))
    if grey:
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB"))


def is_dicom(data: bytes) -> bool:
    """DICOM Part 10 files carry ``DICM`` after a 128-byte preamble."""
    return len(data) >= 132 and data[128:132] == b"DICM"


HEAD_BYTES = 132  # enough of a file's start to tell its kind (``image_kind``)
NOT_AN_IMAGE = (
    "not a PNG, JPEG or DICOM image (its first bytes are none of these formats; a DICOM file "
    "needs its Part 10 header: the 128-byte preamble, then 'DICM')"
)


UNSUPPORTED_JPEG = (
    "a JPEG that cannot be decoded here: a variant such as a 12-bit, lossless or JPEG-LS one "
    "(8-bit baseline and progressive JPEGs are read; convert it to PNG), or a damaged file"
)


def undecodable(kind: str | None, exc: Exception) -> "ImageDecodeError":
    """Why a file whose first bytes say ``kind`` (``image_kind``) failed to decode with ``exc``
    (Pillow's), for a person: an unsupported JPEG variant, a damaged or truncated PNG or JPEG,
    or none of the formats (``NOT_AN_IMAGE``)."""
    if isinstance(exc, UnidentifiedImageError):  # its text names a file object's address
        return ImageDecodeError(UNSUPPORTED_JPEG if kind == "jpeg" else NOT_AN_IMAGE)
    what = f"a damaged or truncated {kind.upper()} file" if kind else NOT_AN_IMAGE
    return ImageDecodeError(f"{what} ({type(exc).__name__}: {exc})")


def image_kind(head: bytes) -> str | None:
    """``"dicom"``, ``"png"`` or ``"jpeg"`` from a file's first ``HEAD_BYTES`` bytes (its
    signature), or None: how the served model (``decode_image``) and the dataloader tell a
    format, whatever the file's name (PACS exports name DICOM files ``IM0001`` or by their UID,
    without ``.dcm``)."""
    if is_dicom(head):
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    return None


def declared_pixels(data: bytes) -> int | None:
    """The pixels (height × width; a DICOM file's first frame) that the header of encoded PNG,
    JPEG or DICOM bytes declares, read without decoding them; None when the header cannot be
    read (``decode_image`` then says why)."""
    try:
        if image_kind(data[:HEAD_BYTES]) == "dicom":
            ds = open_dicom(io.BytesIO(data), stop_before_pixels=True)
            return int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0)
        with warnings.catch_warnings():  # Pillow warns of large images: decoding refuses them
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return im.width * im.height
    except Exception:  # any broken or refused header: decoding names the problem
        return None


def decode_image(data: bytes, check_dicom: Callable[[Any], None] | None = None) -> np.ndarray:
    """Encoded PNG, JPEG or DICOM bytes as uint8 ``H×W`` or ``H×W×3``.

    Args:
        data: The encoded file.
        check_dicom: Called with a DICOM file's pydicom dataset before its pixels are decoded;
            raises ``ImageDecodeError`` to refuse it (the served model's
            ``modality.check_dicom_input``).

    Raises:
        ImageDecodeError: The bytes are none of these formats, are truncated, or declare more
            than ``MAX_PIXELS`` pixels; or ``check_dicom`` refused the file.
    """
    if not data:
        raise ImageDecodeError("empty file; send a PNG, JPEG or DICOM image")
    if image_kind(data[:HEAD_BYTES]) == "dicom":
        try:
            ds = open_dicom(io.BytesIO(data))
            if check_dicom is not None:
                check_dicom(ds)
            return dicom_pixels(ds)
        except ImageDecodeError:
            raise
        except Exception as exc:  # pydicom raises many kinds for a broken file
            raise ImageDecodeError(f"unreadable DICOM ({type(exc).__name__}: {exc})") from exc
    try:
        with open_image(io.BytesIO(data)) as im:
            return pil_pixels(im)
    except (OSError, SyntaxError) as exc:  # UnidentifiedImageError too
        raise undecodable(image_kind(data[:HEAD_BYTES]), exc) from exc


def conform(pixels: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """Resize (PIL bilinear, antialiased) to ``size`` = (H, W) and convert grey↔RGB.

    Returns:
        uint8 ``H×W×channels``.
    """
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    im = Image.fromarray(pixels)
    if channels == 1 and im.mode != "L":
        im = im.convert("L")
    elif channels == 3 and im.mode != "RGB":
        im = im.convert("RGB")
    if (im.height, im.width) != tuple(size):
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    out = np.asarray(im, dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out
