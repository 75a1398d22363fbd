"""DICOM files as uint8 pixels: modality rescale, VOI window (else a percentile stretch that
leaves padding out), MONOCHROME1 inverted; padding pixels black whether windowed or stretched,
and a file of padding only refused."""

import math
import os
import warnings
from contextlib import ExitStack
from typing import IO, TYPE_CHECKING

import numpy as np

from mlpipeline_model.codestream import check_stream
from mlpipeline_model.pixels import (
    MAX_FRAMES,
    PADDING_ONLY,
    ImageDecodeError,
    check_pixels,
    robust_range,
    to_uint8,
)

if TYPE_CHECKING:
    from pydicom.pixels.decoders.base import Decoder

COLOUR_INTERPRETATIONS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR")


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


def _empty(value) -> bool:
    """Whether an attribute's value is zero-length (pydicom reads it as None, "" or [])."""
    return value is None or (hasattr(value, "__len__") and len(value) == 0)


def _read_empty_as_absent(ds) -> None:
    """Read ``ds``'s zero-length rescale and window attributes (present, without a value, as
    some exports write them) as viewers do: an empty RescaleSlope beside an intercept is 1, an
    empty RescaleIntercept beside a slope 0 (the standard's identity), both empty none; a window
    with an empty centre or width, or a width under 1 (the standard's minimum), is no window.
    Changes ``ds`` in place (it was opened to be decoded)."""
    from pydicom.multival import MultiValue

    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        if _empty(slope) and _empty(intercept):
            del ds.RescaleSlope, ds.RescaleIntercept
        elif _empty(slope):
            ds.RescaleSlope = 1
        elif _empty(intercept):
            ds.RescaleIntercept = 0
    if "WindowCenter" in ds and "WindowWidth" in ds:
        width = ds.get("WindowWidth")
        try:
            first = float(width[0] if isinstance(width, MultiValue) else width)
        except (TypeError, ValueError, IndexError):
            first = math.nan
        # (a NaN or infinite width stays: such a damaged window is refused as blanking)
        if _empty(ds.get("WindowCenter")) or _empty(width) or first < 1:
            del ds.WindowCenter, ds.WindowWidth


def frame_count(ds) -> int:
    """The frames the file declares (NumberOfFrames; 1 when absent or malformed)."""
    try:
        return int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 1


def _check_frames(ds) -> None:
    """Raise ``ImageDecodeError`` for a file declaring more than ``MAX_FRAMES`` frames."""
    if (frames := frame_count(ds)) > MAX_FRAMES:
        raise ImageDecodeError(
            f"the DICOM file declares {frames:,} frames, more than the {MAX_FRAMES:,} a file may "
            "have (only its first frame is classified); export the frame to classify as a "
            "single-frame file"
        )


PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def has_pixels(ds, with_pixels: bool = True) -> bool:
    """Whether ``ds`` has an image's Rows and Columns and (``with_pixels``: read with its pixel
    data) pixel data."""
    return (
        "Rows" in ds and "Columns" in ds and (not with_pixels or any(t in ds for t in PIXEL_TAGS))
    )


def sop_class(ds):
    """The file's SOP Class UID (its meta header's when the dataset lacks one), or None."""
    meta = getattr(ds, "file_meta", None)
    return ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)


def check_image(ds, with_pixels: bool = True) -> None:
    """Raise ``ImageDecodeError`` for a DICOM file that holds no image (a DICOMDIR index, a
    structured report, an RT plan): no Rows/Columns, or (``with_pixels``: read with its pixel
    data) no pixel data; or one that declares more than ``MAX_FRAMES`` frames."""
    if has_pixels(ds, with_pixels):
        _check_frames(ds)
        return
    kind = sop_class(ds)
    name = getattr(kind, "name", None) or str(kind or "no SOP class")
    if "Image Storage" in name:  # an image object whose export left its pixels out
        lacks = [t for t in ("Rows", "Columns") if t not in ds]
        if with_pixels and not any(t in ds for t in PIXEL_TAGS):
            lacks.append("PixelData")
        raise ImageDecodeError(
            f"a DICOM image without pixel data ({name}: no {', '.join(lacks)}); export it again "
            "from its source with its pixel data"
        )
    raise ImageDecodeError(
        f"a DICOM file without an image ({name}, such as a DICOMDIR index or a report): not a "
        "picture to classify; leave it out"
    )


def dicom_pixels(ds) -> np.ndarray:
    """The first frame of a pydicom dataset as uint8 ``H×W`` (grey) or ``H×W×3`` (colour).

    Grey images get the modality rescale (slope/intercept or LUT), then the first VOI window when
    the file has one (mapped onto 0–255 over the window's output range), else a stretch between
    percentiles (``robust_range``) that leaves out padding pixels (PixelPaddingValue, up to
    PixelPaddingRangeLimit); zero-length rescale or window attributes read as absent
    (``_read_empty_as_absent``); MONOCHROME1 (white = low values) is inverted so that bright always
    means high signal; padding pixels are black in every case.

    Raises:
        ImageDecodeError: The file holds no usable image (padding pixels only, a blanking
            rescale or window, damaged or undecodable pixel data, too many pixels or frames).
    """
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_windowing

    check_image(ds)
    check_pixels(int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0))
    _check_first_frame(ds)
    if frame_count(ds) > 1:
        ds.pixel_array_options(index=0)  # decode the first frame only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pixels = ds.pixel_array  # colour comes back as RGB (YBR converted)
        except ValueError as exc:
            if "less than expected" not in str(exc):
                raise
            raise ImageDecodeError(
                f"DICOM pixel data holds fewer bytes than its header declares (Rows "
                f"{ds.get('Rows')}, Columns {ds.get('Columns')}, {frame_count(ds):,} frames): the "
                "file is truncated or its header damaged; re-export it from its source"
            ) from exc
        except (RuntimeError, NotImplementedError) as exc:
            syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            if syntax is None or not syntax.is_compressed:
                raise
            raise _undecodable(syntax, exc, ds.get("BitsStored")) from exc
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
        return to_uint8(pixels, float(pixels.min()), float(pixels.max()))
    _read_empty_as_absent(ds)
    _check_rescale(ds)
    values = apply_modality_lut(pixels, ds)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ImageDecodeError(
            "DICOM rescale gives undefined pixel values (NaN or ∞); re-export the file"
        )
    padding = _padding(pixels, ds)
    if padding is not None and padding.all():  # windowed or not: a black image, not a picture
        raise ImageDecodeError(PADDING_ONLY)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        values = apply_windowing(values, ds)
        # The window's output range (y_min, y_max): what the most extreme inputs map to.
        low, high = apply_windowing(np.array([-1e30, 1e30]), ds)
        if not (np.isfinite([low, high]).all() and np.isfinite(values).all() and high > low):
            raise ImageDecodeError(
                f"DICOM window (WindowCenter {ds.WindowCenter}, WindowWidth {ds.WindowWidth}) "
                "gives undefined or constant pixel values; re-export the file from its source"
            )
        image = to_uint8(values, float(low), float(high))
    else:
        image = to_uint8(values, *robust_range(values, padding))
    if interpretation == "MONOCHROME1":
        image = 255 - image
    if padding is not None:
        image[padding] = 0  # no signal: black, in either interpretation, windowed or not
    return image


# The compressions decoded here (pydicom with its Pillow and GDCM plugins): 8-bit JPEG (Baseline,
# and Extended when 8 bits are stored), JPEG Lossless (Process 14, and its selection value 1),
# JPEG-LS (lossless, near-lossless), JPEG 2000 (lossless, lossy) and RLE. Others, such as 12-bit
# JPEG Extended, have plugins that refuse them.
DECODED_SYNTAXES = (
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5",
)
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"  # 8 or 12 bits; Pillow and GDCM decode 8 only


def _check_first_frame(ds) -> None:
    """Refuse compressed pixel data whose first frame's own stream declares another size than
    the header (``codestream.check_stream``), before a decoder sizes its work by the stream."""
    from pydicom.encaps import generate_fragments

    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or not syntax.is_encapsulated or "PixelData" not in ds:
        return
    try:  # the first fragment after the offset table: the first frame's stream starts there
        # (whatever NumberOfFrames claims: a forged count must not skip the check)
        items = generate_fragments(ds.PixelData)
        next(items)
        frame = next(items)
    except (ValueError, KeyError, IndexError, TypeError, StopIteration):  # the decoder says so
        return
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    check_stream(str(syntax), frame, int(ds.Rows), int(ds.Columns), samples)


def _undecodable(syntax, exc: Exception, bits_stored: object = None) -> ImageDecodeError:
    """The error for compressed pixel data that raised ``exc`` when decoded: damaged when its
    compression is one decoded here and a decoder for it is installed, else not supported here,
    naming the transfer syntax (name and UID, with ``bits_stored``) and the packages of the
    pydicom plugins that would read it (``_readers``)."""
    from pydicom.pixels import get_decoder

    why = " ".join(line.strip() for line in str(exc).splitlines())
    bits = f", {bits_stored} bits stored" if isinstance(bits_stored, int) else ""
    what = f"{syntax.name} (transfer syntax {syntax}{bits})"
    decoded = syntax in DECODED_SYNTAXES or (syntax == JPEG_EXTENDED and bits_stored == 8)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:  # pydicom has no decoder for the syntax at all
        decoder = None
    if decoded and decoder is not None and decoder.is_available:
        return ImageDecodeError(
            f"DICOM pixel data compressed as {what} could not be decoded, though that "
            f"compression is read here: the pixel data may be damaged; re-export the file from "
            f"its source ({why})"
        )
    return ImageDecodeError(
        f"DICOM pixel data compressed as {what} cannot be decoded by this installation: "
        f"{_readers(decoder)}; export it uncompressed or as JPEG Lossless, JPEG-LS, JPEG 2000 "
        f"or RLE ({why})"
    )


def _readers(decoder: "Decoder | None") -> str:
    """Which packages would decode a transfer syntax that the installed plugins do not, from
    pydicom's own list of its plugins that lack their packages (``missing_dependencies``:
    ``"pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1"``)."""
    plugins = [
        entry.split(" - requires ", 1)
        for entry in (decoder.missing_dependencies if decoder else [])
    ]
    named = [f"{p[0]} plugin (needs {p[1]})" for p in plugins if len(p) == 2]
    if not named:
        return "pydicom has no decoder for it, whatever is installed"
    return f"pydicom would read it with its {' or its '.join(named)}, which this installation lacks"


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
