"""Whether a decoded image shows colour (``mlpipeline_model.colour``), on real files: a colour
photograph, a colour DICOM ultrasound, and BreastMNIST ultrasound stored as RGB, with equal
channels or with the chroma noise of a near-grey JPEG; and the note of a grey model's answer."""

import io
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file

from mlpipeline_model import colour_note, decode_image

PHOTO = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"  # a colour photograph


def _encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def ultrasound(breastmnist) -> np.ndarray:
    """A real BreastMNIST ultrasound image, 448² (upscaled), grey ``H×W``."""
    image = np.load(breastmnist)["train_images"][0]
    return np.asarray(Image.fromarray(image).resize((448, 448), Image.Resampling.BICUBIC))


def test_a_colour_photograph_is_noted_for_a_grey_model():
    assert "colour image read as grey" in colour_note(decode_image(PHOTO.read_bytes()), 1)


def test_a_colour_dicom_ultrasound_is_noted_for_a_grey_model():
    pixels = decode_image(Path(get_testdata_file("examples_ybr_color.dcm")).read_bytes())
    assert "channels 1" in colour_note(pixels, 1)  # YBR_FULL: 4 % of its pixels in colour


def test_an_rgb_png_of_equal_channels_is_not_noted(ultrasound):
    pixels = decode_image(_encoded(np.stack([ultrasound] * 3, -1), "PNG"))
    assert pixels.shape == (448, 448, 3) and colour_note(pixels, 1) is None


def test_a_near_grey_rgb_jpeg_with_chroma_noise_is_not_noted(ultrasound):
    noise = np.random.default_rng(0).integers(-2, 3, (*ultrasound.shape, 3))
    near_grey = np.clip(ultrasound[..., None] + noise, 0, 255).astype(np.uint8)
    pixels = decode_image(_encoded(near_grey, "JPEG", quality=95, subsampling=2))  # 4:2:0
    assert np.ptp(pixels.astype(int), axis=-1).max() > 2  # the channels do differ a little
    assert colour_note(pixels, 1) is None


def test_thin_coloured_annotations_on_a_grey_scan_are_noted(ultrasound):
    screen = Image.fromarray(np.stack([ultrasound] * 3, -1))
    draw = ImageDraw.Draw(screen)
    draw.line((100, 120, 300, 330), fill=(255, 255, 0), width=1)  # a yellow caliper line
    draw.text((10, 10), "L 2.83 cm  D 1.92 cm", fill=(0, 255, 0))  # 0.3 % of the pixels in all
    assert colour_note(decode_image(_encoded(np.asarray(screen), "PNG")), 1) is not None


def test_a_colour_model_gets_no_note():
    assert colour_note(decode_image(PHOTO.read_bytes()), 3) is None
