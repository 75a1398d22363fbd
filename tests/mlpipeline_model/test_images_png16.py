"""16-bit colour and grey+alpha PNGs are decoded at their full depth (``mlpipeline_model.images``),
stretched like 16-bit grey ones, not cut to the high byte of each value as Pillow reads them."""

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from mlpipeline_model import ImageDecodeError, decode_image
from mlpipeline_model.pixels import robust_range, to_uint8
from tests.mlpipeline_model.png16 import png16

# 900–1200 of 65535: what a 12-bit detector's values look like; their high bytes are 3 and 4.
GRADIENT = (900 + np.linspace(0, 1, 4096).reshape(64, 64) * 300).astype(np.uint16)
ALPHA = np.full((64, 64), 40000, dtype=np.uint16)


def _grey() -> np.ndarray:
    """The gradient as a 16-bit grey PNG decodes (the path that was already full-depth)."""
    return decode_image(png16(GRADIENT[..., None]))


def test_a_16_bit_rgb_png_keeps_its_levels_as_a_16_bit_grey_one_does():
    pixels = decode_image(png16(np.dstack([GRADIENT] * 3)))
    assert len(np.unique(pixels)) > 200  # it decoded to 2 levels: [3 4]
    np.testing.assert_array_equal(pixels, np.dstack([_grey()] * 3))


def test_a_16_bit_rgba_png_is_its_colour_stretched_and_alpha_dropped():
    pixels = decode_image(png16(np.dstack([GRADIENT] * 3 + [ALPHA])))
    np.testing.assert_array_equal(pixels, np.dstack([_grey()] * 3))


def test_a_16_bit_grey_and_alpha_png_is_grey_at_full_depth():
    pixels = decode_image(png16(np.dstack([GRADIENT, ALPHA])))
    np.testing.assert_array_equal(pixels, _grey())  # H×W: grey, as an 8-bit one is


def test_one_stretch_over_all_channels_keeps_the_colour_balance():
    red, blue = GRADIENT, (GRADIENT - 900) // 2 + 900  # blue rises half as far
    pixels = decode_image(png16(np.dstack([red, red, blue]))).astype(int)
    assert pixels[..., 0].max() == 255 and pixels[..., 0].min() == 0
    assert 110 < pixels[..., 2].max() < 145  # about half of red's range, not stretched to 255


def test_the_stretch_samples_every_channel_when_its_stride_is_a_multiple_of_three(monkeypatch):
    # 1024² RGB strides by 3 over 1_000_000 values; 60×60 RGB by 9 over 1_200 values.
    monkeypatch.setattr("mlpipeline_model.pixels.STRETCH_SAMPLE", 1_200)
    rng = np.random.default_rng(0)
    red, blue = rng.integers(0, 1001, (2, 60, 60)) * [[[1]], [[4]]]  # blue rises 4× as far
    decoded = decode_image(png16(np.dstack([red, red, blue]).astype(np.uint16)))
    assert (decoded[..., 2] == 255).mean() < 0.05  # stretched by red alone: 75 % were 255


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_every_png_row_filter_and_interlacing_are_undone(channels):
    values = np.random.default_rng(channels).integers(0, 65536, (37, 53, channels), np.uint16)
    colour = values[..., 0] if channels == 2 else values[..., :3]  # alpha dropped
    expected = to_uint8(colour, *robust_range(colour))
    np.testing.assert_array_equal(decode_image(png16(values)), expected)  # all 5 row filters
    np.testing.assert_array_equal(decode_image(png16(values, interlaced=True)), expected)


def test_a_16_bit_colour_png_is_turned_upright_by_its_exif_orientation():
    stored = np.full((20, 40, 3), 900, dtype=np.uint16)
    stored[:5, :5] = 1200  # a bright corner at the stored top left (the same high byte, 3 or 4)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    upright = decode_image(png16(stored, exif=exif.tobytes()))
    assert upright.shape == (40, 20, 3)
    assert upright[:5, -5:].mean() > 200 and upright[:5, :5].mean() < 50  # now top right


def test_an_8_bit_rgb_png_is_decoded_as_before():
    values = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
    encoded = io.BytesIO()
    Image.fromarray(values).save(encoded, format="PNG")
    np.testing.assert_array_equal(decode_image(encoded.getvalue()), values)


def test_a_16_bit_colour_png_s_text_after_its_pixels_that_inflates_too_far_is_named():
    inflating = b"Comment\0\0" + zlib.compress(b"\0" * (8 * 2**20))  # 8 KB that inflate to 8 MiB
    ztxt = struct.pack(">I", len(inflating)) + b"zTXt" + inflating
    ztxt += struct.pack(">I", zlib.crc32(b"zTXt" + inflating))
    png = png16(np.full((8, 8, 3), 900, np.uint16))
    with pytest.raises(ImageDecodeError, match=r"PNG's metadata .* more than the 1 MiB allowed"):
        decode_image(png[:-12] + ztxt + png[-12:])  # after IDAT, before IEND (its last 12 bytes)


def _peak_decoding(encoded: bytes) -> int:
    """Peak bytes numpy and Python allocate while ``encoded`` is decoded (tracemalloc)."""
    tracemalloc.start()
    try:
        decode_image(encoded)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_16_bit_colour_png_is_decoded_in_little_more_memory_than_its_samples(monkeypatch):
    monkeypatch.setattr("mlpipeline_model.images.STRIP_PIXELS", 10_000)
    monkeypatch.setattr("mlpipeline_model.pixels.STRETCH_BLOCK", 10_000)
    monkeypatch.setattr("mlpipeline_model.pixels.STRETCH_SAMPLE", 10_000)
    samples = np.random.default_rng(0).integers(0, 65536, (400, 600, 3), np.uint16)
    # The 16-bit samples and the 8-bit result, not copies of the image per step (2.5× before).
    assert _peak_decoding(png16(samples)) < 1.7 * samples.nbytes


def test_a_16_bit_grey_png_is_stretched_a_block_of_rows_at_a_time(monkeypatch):
    monkeypatch.setattr("mlpipeline_model.pixels.STRETCH_BLOCK", 10_000)
    monkeypatch.setattr("mlpipeline_model.pixels.STRETCH_SAMPLE", 10_000)
    samples = np.random.default_rng(0).integers(0, 65536, (400, 600, 1), np.uint16)
    # with one float64 copy of the whole image: 5.5×
    assert _peak_decoding(png16(samples)) < 3 * samples.nbytes


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_strips_and_blocks_give_the_pixels_of_one_whole_read(monkeypatch, channels):
    """Read a few rows at a time (7-row strips, 500-value stretch blocks), a 16-bit PNG of 2, 3
    or 4 samples decodes to the same pixels as in one piece."""
    rng = np.random.default_rng(channels)
    samples = rng.integers(0, 65536, (61, 37, channels), dtype=np.uint16)
    data = png16(samples)
    whole = decode_image(data)
    monkeypatch.setattr("mlpipeline_model.images.STRIP_PIXELS", 7 * 37)
    monkeypatch.setattr("mlpipeline_model.pixels.STRETCH_BLOCK", 500)
    np.testing.assert_array_equal(decode_image(data), whole)
