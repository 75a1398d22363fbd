"""Decoding images (PNG, JPEG, DICOM) to uint8 pixels and bringing them to the model's size.

The dataloader uses these functions for training data and the logged model for requests, so a
served image is prepared exactly like a training image, as long as both run the same version of
this code: a process that imported the repository's copy (the predictor, evaluator, explainer)
decodes with it, not with the copy logged with an older model. ``DECODING_VERSION`` tells them
apart (``decoding_note``).
"""

import io
import math
import os
import warnings
from contextlib import ExitStack
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
# Larger images are refused before their pixels are decoded: a few hundred kilobytes of PNG can
# declare gigabytes of pixels. The largest projection radiographs and mammograms are about 15 MP.
MAX_PIXELS = 40_000_000
# A model stretches a smaller image to its input at most this much per side; beyond it (a
# thumbnail, an icon) the pixels it would classify were invented by the resize. The evaluator
# refuses such data sets and the served model such images.
MAX_UPSCALE = 4
PIL_FORMATS = ("PNG", "JPEG", "MPO")  # MPO: a JPEG with extra frames (many phone cameras)
COLOUR_INTERPRETATIONS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR")
# Bump it when decoding changes what a file yields: the dataloader's cache keys include it, and a
# model records the version it was trained with (``decoding_note``). 2: EXIF orientation applied;
# files over MAX_PIXELS skipped from their header. 3: palette PNGs of greys are grey; images in
# subfolders of a class folder are read. 4: GIF/TIFF files named .png and deflated DICOM files,
# or ones whose rescale or window blanks them, are skipped. 5: a file's kind comes from its first
# bytes, not its name (DICOM files without .dcm are read). 6: 16-bit and float images and DICOM
# files without a window are stretched between percentiles (``robust_range``), not min/max, and
# DICOM padding pixels (PixelPaddingValue) are left out of the stretch and black; images more than
# MAX_UPSCALE× smaller than the size a data set is resized to are skipped by the dataloader.
DECODING_VERSION = 6
# The stretch of images without a display window: these percentiles of their values map to 0 and
# 255 (as nnU-Net's and MONAI's percentile scaling), so that one burned-in marker, metal or a
# hot pixel does not crush the rest of the image to black. Computed on at most STRETCH_SAMPLE
# evenly strided values (a 40-megapixel image needs no full sort).
STRETCH_PERCENTILES = (0.5, 99.5)
STRETCH_SAMPLE = 1_000_000


def decoding_note(trained_with: int | None) -> str | None:
    """Why images may reach a model trained on images decoded by version ``trained_with``
    prepared differently from its training images here; None when the versions agree or the
    model predates the record (None)."""
    if trained_with is None or trained_with == DECODING_VERSION:
        return None
    return (
        f"the model was trained on images decoded by version {trained_with} of the image "
        f"decoding; this process decodes with version {DECODING_VERSION}, which may prepare "
        "some files differently (see the history at mlpipeline_model.images.DECODING_VERSION): "
        "evaluate the run again here, or train it again, before relying on its figures"
    )


class ImageDecodeError(ValueError):
    """An input is not an image the model can read; ``index`` is its position in the batch."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


TOO_LARGE = (
    f"is more than the {MAX_PIXELS // 1_000_000} megapixels an image may have; downscale it "
    "(the model reads a few hundred pixels a side)"
)


def check_pixels(height: int, width: int) -> None:
    """Raise ``ImageDecodeError`` for an image over ``MAX_PIXELS`` (decoding it could exhaust
    memory); called with the size a file declares, before its pixels are read."""
    if height * width > MAX_PIXELS:
        raise ImageDecodeError(f"{width}×{height} px {TOO_LARGE}")


def too_small(size: tuple[int, int], model_size: tuple[int, int]) -> bool:
    """Whether an image of ``size`` (H, W) is more than ``MAX_UPSCALE``× smaller than
    ``model_size`` on some side."""
    return any(side * MAX_UPSCALE < target for side, target in zip(size, model_size, strict=True))


def open_image(source: str | os.PathLike | IO[bytes]) -> Image.Image:
    """``Image.open`` for every reader (dataloader and served model): an image over Pillow's own
    decompression-bomb limit is the same ``ImageDecodeError`` as one over ``MAX_PIXELS``, and
    only PNG and JPEG are opened (a GIF or TIFF named ``.png`` is refused alike everywhere)."""
    try:
        im = Image.open(source)
    except Image.DecompressionBombError as exc:  # raised on opening, from the header
        raise ImageDecodeError(f"the image {TOO_LARGE} ({exc})") from exc
    if im.format not in PIL_FORMATS:
        im.close()
        raise ImageDecodeError(f"{im.format} images are not accepted; send PNG, JPEG or DICOM")
    return im


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
    """Whether ``im`` holds grey values only, judged from its header: a grey mode, or a palette
    whose every entry is grey (what many PACS and converters write for 8-bit grey images)."""
    if im.mode in GREY_MODES:
        return True
    if im.mode != "P" or im.palette is None:
        return False
    step = len(im.palette.mode)  # "RGB" or "RGBA" entries
    raw = np.frombuffer(bytes(im.palette.palette), dtype=np.uint8)
    entries = raw[: len(raw) // step * step].reshape(-1, step)
    return bool((entries[:, 0] == entries[:, 1]).all() and (entries[:, 1] == entries[:, 2]).all())


def upright_size(im: Image.Image) -> tuple[int, int]:
    """(height, width) of ``im`` as shown: swapped when its EXIF orientation turns it by 90°."""
    turned = _orientation(im) in (5, 6, 7, 8)
    return (im.width, im.height) if turned else (im.height, im.width)


def pil_pixels(im: Image.Image) -> np.ndarray:
    """A PIL image as uint8 ``H×W`` (grey) or ``H×W×3`` (colour), upright.

    A camera's EXIF orientation is applied, so that photographs are learned and served the way
    viewers show them; 16-bit and float greyscale images are stretched onto 0–255 between the
    percentiles of ``robust_range``; alpha is dropped; palette images become RGB, or grey when
    every palette entry is.

    Raises:
        ImageDecodeError: The image declares more than ``MAX_PIXELS`` pixels.
    """
    check_pixels(im.height, im.width)
    orientation = _orientation(im)  # before load(), as upright_size reads it
    grey = is_grey(im)
    im.load()
    if orientation in range(2, 9):
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(im)  # native width: _to_uint8 makes the one float64 copy
        return _to_uint8(values, *robust_range(values))
    if grey:
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB"))


def robust_range(values: np.ndarray, ignore: np.ndarray | None = None) -> tuple[float, float]:
    """The values to stretch onto 0 and 255: the ``STRETCH_PERCENTILES`` of ``values`` (leaving
    out those where the mask ``ignore`` is set), or their min and max when the percentiles are
    equal (a small bright finding on an even background must stay visible); (0, 0) when nothing
    is left."""
    step = max(1, values.size // STRETCH_SAMPLE)
    sample = values.reshape(-1)[::step]
    if ignore is not None:
        sample = sample[~ignore.reshape(-1)[::step]]
    if sample.size == 0:
        return 0.0, 0.0
    low, high = (float(v) for v in np.percentile(sample, STRETCH_PERCENTILES))
    if high <= low:
        kept = values if ignore is None else values[~ignore]
        low, high = float(kept.min(initial=np.inf)), float(kept.max(initial=-np.inf))
    return low, high


def _to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` from ``low``–``high`` onto 0–255, computed in one float64 buffer (in place:
    a 40-megapixel 16-bit PNG took 1.3 GB with a temporary per step, 0.5 GB now)."""
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.array(values, dtype=np.float64)  # a copy: the caller's array stays as it was
    scaled -= low
    scaled *= 255.0 / (high - low)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


DEFLATED_SYNTAX = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian


def open_dicom(source: str | os.PathLike | IO[bytes], stop_before_pixels: bool = False):
    """pydicom's dataset of a DICOM Part 10 file (a path or a binary file object).

    A deflated file is refused from its file meta, before pydicom inflates the whole data set
    in memory: a 1 MB deflated file can hold gigabytes, past any size check of the header.
    """
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_preamble

    with ExitStack() as stack:
        fp = source if hasattr(source, "read") else stack.enter_context(open(source, "rb"))
        start = fp.tell()
        read_preamble(fp, False)
        syntax = _read_file_meta_info(fp).get("TransferSyntaxUID")
        if syntax == DEFLATED_SYNTAX:
            raise ImageDecodeError(
                "deflated DICOM (Deflated Explicit VR Little Endian) is not accepted: its size "
                "cannot be checked before it is inflated; export it uncompressed or with JPEG, "
                "JPEG-LS, JPEG 2000 or RLE pixel compression"
            )
        fp.seek(start)
        with warnings.catch_warnings():  # pydicom warns about odd files; broken ones raise
            warnings.simplefilter("ignore")
            return pydicom.dcmread(fp, stop_before_pixels=stop_before_pixels)


def _check_rescale(ds) -> None:
    """Refuse a modality rescale that makes every pixel equal or undefined (slope 0, NaN, ∞):
    the image would decode as a blank one and still get a prediction."""
    slope = ds.get("RescaleSlope")
    if slope is None:
        return
    try:
        value = float(slope)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value == 0:
        raise ImageDecodeError(
            f"DICOM RescaleSlope {slope!s} leaves no usable pixel values; re-export the file "
            "from its source"
        )


def dicom_pixels(ds) -> np.ndarray:
    """The first frame of a pydicom dataset as uint8 ``H×W`` (grey) or ``H×W×3`` (colour).

    Grey images get the modality rescale (slope/intercept or LUT), then the first VOI window when
    the file has one (mapped onto 0–255 over the window's output range), else a stretch between
    percentiles (``robust_range``) that leaves out padding pixels (PixelPaddingValue, up to
    PixelPaddingRangeLimit), which become black; MONOCHROME1 (white = low values) is inverted so
    that bright always means high signal.
    """
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_windowing

    check_pixels(int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0))
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        ds.pixel_array_options(index=0)  # decode the first frame only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pixels = ds.pixel_array  # colour comes back as RGB (YBR converted)
        except (RuntimeError, NotImplementedError) as exc:
            syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            if syntax is None or not syntax.is_compressed:
                raise
            why = " ".join(line.strip() for line in str(exc).splitlines())
            raise ImageDecodeError(
                f"DICOM pixel data compressed as {syntax.name} cannot be decoded here; export it "
                f"uncompressed or as JPEG Lossless, JPEG-LS, JPEG 2000 or RLE ({why})"
            ) from exc
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    expected = (rows, columns) if samples == 1 else (rows, columns, samples)
    if pixels.shape != expected:  # e.g. more frames stored than NumberOfFrames declares
        raise ImageDecodeError(
            f"DICOM pixel data of shape {'×'.join(map(str, pixels.shape))} does not match its "
            f"header (Rows {rows}, Columns {columns}, SamplesPerPixel {samples}, one frame); "
            "re-export the file from its source"
        )
    interpretation = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if interpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    if pixels.ndim == 3:  # colour: stretch only when not already 8-bit
        if pixels.dtype == np.uint8:
            return pixels
        return _to_uint8(pixels, float(pixels.min()), float(pixels.max()))
    _check_rescale(ds)
    values = apply_modality_lut(pixels, ds)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ImageDecodeError(
            "DICOM rescale gives undefined pixel values (NaN or ∞); re-export the file"
        )
    if "WindowCenter" in ds and "WindowWidth" in ds:
        values = apply_windowing(values, ds)
        # The window's output range (y_min, y_max): what the most extreme inputs map to.
        low, high = apply_windowing(np.array([-1e30, 1e30]), ds)
        if not (np.isfinite([low, high]).all() and np.isfinite(values).all() and high > low):
            raise ImageDecodeError(
                f"DICOM window (WindowCenter {ds.WindowCenter}, WindowWidth {ds.WindowWidth}) "
                "gives undefined or constant pixel values; re-export the file from its source"
            )
        image, padding = _to_uint8(values, float(low), float(high)), None
    else:
        padding = _padding(pixels, ds)
        image = _to_uint8(values, *robust_range(values, padding))
    if interpretation == "MONOCHROME1":
        image = 255 - image
    if padding is not None:
        image[padding] = 0  # no signal: black, in either interpretation
    return image


def _padding(pixels: np.ndarray, ds) -> np.ndarray | None:
    """Where the stored ``pixels`` are padding (outside the scanned field: PixelPaddingValue, or
    the range up to PixelPaddingRangeLimit); None when the file declares none or none is there."""
    value, limit = ds.get("PixelPaddingValue"), ds.get("PixelPaddingRangeLimit")
    try:
        value = int(value) if value is not None else None
        limit = int(limit) if limit is not None else None
    except (TypeError, ValueError):  # a malformed attribute: no padding rather than a failure
        return None
    if value is None:
        return None
    low, high = (value, value) if limit is None else (min(value, limit), max(value, limit))
    mask = (pixels >= low) & (pixels <= high)
    return mask if mask.any() else None


def is_dicom(data: bytes) -> bool:
    """DICOM Part 10 files carry ``DICM`` after a 128-byte preamble."""
    return len(data) >= 132 and data[128:132] == b"DICM"


HEAD_BYTES = 132  # enough of a file's start to tell its kind (``image_kind``)
NOT_AN_IMAGE = (
    "not a PNG, JPEG or DICOM image (its first bytes are none of these formats; a DICOM file "
    "needs its Part 10 header: the 128-byte preamble, then 'DICM')"
)


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


def decode_image(data: bytes) -> np.ndarray:
    """Encoded PNG, JPEG or DICOM bytes as uint8 ``H×W`` or ``H×W×3``.

    Raises:
        ImageDecodeError: The bytes are none of these formats, are truncated, or declare more
            than ``MAX_PIXELS`` pixels.
    """
    if not data:
        raise ImageDecodeError("empty file; send a PNG, JPEG or DICOM image")
    if image_kind(data[:HEAD_BYTES]) == "dicom":
        try:
            return dicom_pixels(open_dicom(io.BytesIO(data)))
        except ImageDecodeError:
            raise
        except Exception as exc:  # pydicom raises many kinds for a broken file
            raise ImageDecodeError(f"unreadable DICOM ({type(exc).__name__}: {exc})") from exc
    try:
        with open_image(io.BytesIO(data)) as im:
            return pil_pixels(im)
    except UnidentifiedImageError as exc:  # its text names a BytesIO object's address
        raise ImageDecodeError(NOT_AN_IMAGE) from exc
    except (OSError, SyntaxError) as exc:
        raise ImageDecodeError(
            f"not a PNG, JPEG or DICOM image ({type(exc).__name__}: {exc})"
        ) from exc


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
