"""Reading one image file: the header pass (size, colour, group) and the decode agree.

That the header pass does not decode a PNG is measured in ``benchmarks/bench_dataloader.py``."""

import io

import numpy as np
import pytest
from PIL import Image

from dataloader.images import read_header, read_pixels
from mlpipeline_model import ImageDecodeError
from tests.mlpipeline_model.png16 import png16


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_the_header_and_the_pixels_are_upright_by_the_exif_orientation(tmp_path, suffix):
    stored = np.zeros((20, 40), dtype=np.uint8)  # 40 wide, 20 high as the sensor wrote it
    stored[:5, :5] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(stored).save(path, exif=exif)
    assert read_header(path)[:2] == (40, 20)
    pixels = read_pixels(path)
    assert pixels.shape == (40, 20)
    assert pixels[:5, -5:].mean() > 200 and pixels[:5, :5].mean() < 50  # corner now top right


def test_a_palette_png_of_greys_is_grey_and_one_of_colours_is_colour(tmp_path):
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(ramp).convert("P").save(tmp_path / "grey.png")
    Image.fromarray(np.stack([ramp, ramp // 2, 255 - ramp], -1)).convert("P").save(
        tmp_path / "colour.png"
    )
    assert read_header(tmp_path / "grey.png")[2] is False
    np.testing.assert_array_equal(read_pixels(tmp_path / "grey.png"), ramp)
    assert read_header(tmp_path / "colour.png")[2] is True
    assert read_pixels(tmp_path / "colour.png").shape == (16, 16, 3)


def test_a_16_bit_grey_and_alpha_png_is_grey_by_its_header_and_its_pixels(tmp_path):
    grey = np.arange(256, dtype=np.uint16).reshape(16, 16) * 4 + 900
    path = tmp_path / "grey-alpha.png"
    path.write_bytes(png16(np.dstack([grey, np.full_like(grey, 65535)])))  # Pillow: RGBA
    assert read_header(path)[2] is False
    assert read_pixels(path).shape == (16, 16)


def test_a_truncated_jpeg_is_named_as_one(tmp_path):
    """The dataloader listed a bare "OSError: image file is truncated" where the served model
    says what the file is."""
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(
        out, format="JPEG"
    )
    (tmp_path / "cut.jpg").write_bytes(out.getvalue()[: len(out.getvalue()) // 2])
    with pytest.raises(ImageDecodeError, match=r"^a damaged or truncated JPEG file \(OSError"):
        read_pixels(tmp_path / "cut.jpg")
