"""What every reader of images shares: the size limits, the decoding's version and the stretch of
high-bit-depth values onto 8 bits (``mlpipeline_model.images`` for PNG/JPEG, ``.dicom``)."""

import numpy as np

# Larger images are refused before their pixels are decoded: a few hundred kilobytes of PNG can
# declare gigabytes of pixels. The largest projection radiographs and mammograms are about 15 MP.
MAX_PIXELS = 40_000_000
# A DICOM file may declare at most this many frames (only the first is classified): a header
# declaring more (cine loops run to hundreds) is damaged or made to exhaust the reader.
MAX_FRAMES = 10_000
# A model stretches a smaller image to its input at most this much per side; beyond it (a
# thumbnail, an icon) the pixels it would classify were invented by the resize. The served model
# refuses such images, the dataloader skips them (``misfit``).
MAX_UPSCALE = 4
# Nor does it squash one side against the other more than this: a 10×4000 strip brought to a
# square input is no longer the picture it was (crop the region instead).
MAX_DISTORTION = 4
# Bump it when decoding changes what a file yields: the dataloader's cache keys include it, and a
# model records the version it was trained with (``decoding_note``). 2: EXIF orientation applied;
# files over MAX_PIXELS skipped from their header. 3: palette PNGs of greys are grey; images in
# subfolders of a class folder are read. 4: GIF/TIFF files named .png and deflated DICOM files,
# or ones whose rescale or window blanks them, are skipped. 5: a file's kind comes from its first
# bytes, not its name (DICOM files without .dcm are read). From 6 on: DECODING_CHANGES. (Which
# files the dataloader keeps has its own version: dataloader.cache.LOADER_VERSION.)
DECODING_VERSION = 7
# What each version since models record it changed, and for which files: a model's note names
# only these, so that a model of other files can be told that nothing it sees differs.
DECODING_CHANGES = {
    6: "16-bit images and DICOM files without a VOI window are stretched between percentiles "
    "of their values (padding left out), not from their minimum to their maximum",
    7: "16-bit colour and grey+alpha PNGs are read at their full depth and stretched like 16-bit "
    "grey ones, by one stretch over all their channels alike (they kept only the high byte of "
    "each value: a few grey levels), a grey+alpha one as grey; padding pixels of DICOM files "
    "with a VOI window are black (white in MONOCHROME1 files before, in others the window's "
    "value for them), and such a file of padding only is refused as one without a window is",
}
# The stretch of images without a display window: these percentiles of their values map to 0 and
# 255 (as nnU-Net's and MONAI's percentile scaling), so that one burned-in marker, metal or a
# hot pixel does not crush the rest of the image to black. Computed on at most STRETCH_SAMPLE
# evenly strided values (a 40-megapixel image needs no full sort).
STRETCH_PERCENTILES = (0.5, 99.5)
STRETCH_SAMPLE = 1_000_000
STRETCH_BLOCK = 1_000_000  # values stretched per float64 buffer (8 MB) by to_uint8


FIRST_RECORDED = 6  # the first DECODING_VERSION that models record


RELOAD_ADVICE = (
    "this process prepares images with the mlpipeline_model code it imported first; load each "
    "model in a process of its own to use the code logged with it"
)
"""What a process that loaded models of several versions of this code should do instead."""


class DecodingWarning(UserWarning):
    """A model was loaded into a process that decodes images otherwise than its training did
    (``decoding_note``); the pipeline's own services say so themselves and silence it."""


def decoding_note(trained_with: int | None) -> str | None:
    """Why images reaching a model trained on images decoded by version ``trained_with`` (None:
    before versions were recorded) may be prepared here otherwise than its training images were;
    None when the versions agree."""
    if trained_with == DECODING_VERSION:
        return None
    trained = (
        f"version {trained_with}"
        if trained_with is not None
        else f"a version before {FIRST_RECORDED} (not recorded)"
    )
    low, high = sorted((trained_with or FIRST_RECORDED - 1, DECODING_VERSION))
    known = [DECODING_CHANGES[v] for v in range(low + 1, high + 1) if v in DECODING_CHANGES]
    changes = "; ".join(known) or "a newer version's changes, unknown to this copy of the code"
    return (
        f"the model was trained on images decoded by {trained} of the image decoding; these "
        f"images were decoded by version {DECODING_VERSION}, which differs for some files "
        f"({changes}): if its training images included such files, its answers and figures may "
        "differ from what its training saw (train the run again under this version to remove "
        "the difference); if not, nothing differs"
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


def declared_too_large(pixels: int) -> str:
    """The message for an image whose header declares ``pixels`` pixels, over ``MAX_PIXELS``."""
    return f"the image declares {pixels / 1e6:,.0f} megapixels, which {TOO_LARGE}"


def check_pixels(height: int, width: int) -> None:
    """Raise ``ImageDecodeError`` for an image over ``MAX_PIXELS`` (decoding it could exhaust
    memory); called with the size a file declares, before its pixels are read."""
    if height * width > MAX_PIXELS:
        raise ImageDecodeError(f"{width}×{height} px {TOO_LARGE}")


def too_small(size: tuple[int, int], model_size: tuple[int, int]) -> bool:
    """Whether an image of ``size`` (H, W) is more than ``MAX_UPSCALE``× smaller than
    ``model_size`` on some side."""
    return any(side * MAX_UPSCALE < target for side, target in zip(size, model_size, strict=True))


def distortion(size: tuple[int, int], model_size: tuple[int, int]) -> float:
    """How many times more one side of an image of ``size`` (H, W) is stretched (or squashed)
    than the other when it is resized to ``model_size``: 1.0 for the same aspect ratio."""
    if min(*size, *model_size) <= 0:
        return float("inf")
    ratio = (size[1] / size[0]) / (model_size[1] / model_size[0])
    return max(ratio, 1 / ratio)


def misfit(size: tuple[int, int], model_size: tuple[int, int]) -> str | None:
    """Why an image of ``size`` (H, W) cannot be resized to ``model_size`` without inventing its
    pixels (more than ``MAX_UPSCALE``× up a side) or distorting it (more than ``MAX_DISTORTION``×
    one side against the other); None when it can."""
    height, width = model_size
    if too_small(size, model_size):
        return (
            f"{size[0]}×{size[1]} px is more than {MAX_UPSCALE}× smaller than the {height}×"
            f"{width} it would be resized to (its pixels would be invented)"
        )
    if distortion(size, model_size) > MAX_DISTORTION:
        return (
            f"{size[0]}×{size[1]} px would be squashed {distortion(size, model_size):.1f}× "
            f"against its other side to fit {height}×{width} (more than {MAX_DISTORTION}×)"
        )
    return None


PADDING_ONLY = "the image holds padding pixels only: there is nothing to see"


def robust_range(values: np.ndarray, ignore: np.ndarray | None = None) -> tuple[float, float]:
    """The values to stretch onto 0 and 255: the ``STRETCH_PERCENTILES`` of ``values`` (H×W, or
    H×W×C for one stretch over all channels), leaving out the pixels where the H×W mask
    ``ignore`` is set, or their min and max when the percentiles are equal (a small bright
    finding on an even background must stay visible).

    The sample strides over whole pixels, every channel of each: a stride over the flat values
    of an H×W×3 array that is a multiple of 3 (1024² gives 3) met one channel only.

    Raises:
        ImageDecodeError: ``ignore`` leaves no value (an image of padding only).
    """
    pixels = values.reshape(-1, values.shape[2] if values.ndim == 3 else 1)
    step = max(1, values.size // STRETCH_SAMPLE)
    sample = pixels[::step]
    if ignore is not None:
        sample = sample[~ignore.reshape(-1)[::step]]
        if sample.size == 0:  # the strided sample met only padding: take every value left
            sample = pixels[~ignore.reshape(-1)]
    if sample.size == 0:
        raise ImageDecodeError(PADDING_ONLY)
    low, high = (float(v) for v in np.percentile(sample, STRETCH_PERCENTILES))
    if high <= low:
        kept = pixels if ignore is None else pixels[~ignore.reshape(-1)]
        low, high = float(kept.min()), float(kept.max())
    return low, high


def to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` from ``low``–``high`` onto 0–255, computed in float64 a block of about
    ``STRETCH_BLOCK`` values (whole rows) at a time, in place, written into the uint8 result:
    a 40-megapixel 16-bit PNG took 1.3 GB with a float64 temporary per step, 0.5 GB with one
    float64 copy of the image, now the image's own size and one block."""
    out = np.zeros(values.shape, dtype=np.uint8)
    if high <= low:
        return out
    scale = 255.0 / (high - low)
    rows = max(1, STRETCH_BLOCK // max(1, values[:1].size))
    for start in range(0, len(values), rows):
        block = np.array(values[start : start + rows], dtype=np.float64)  # the caller's unchanged
        block -= low
        block *= scale
        np.rint(block, out=block)
        np.clip(block, 0, 255, out=block)
        out[start : start + rows] = block
    return out
