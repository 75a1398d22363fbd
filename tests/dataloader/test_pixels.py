"""What pixels and channels an image folder yields: channel conversion, the data set's
channels, 16-bit images brought to 8 bits."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from dataloader import load_dataset
from tests.dataloader.conftest import write_image


def test_grey_images_become_rgb_on_request(image_folder):
    root = image_folder(per_class=2, mode="L")
    ds = load_dataset(root, channels=3, splits=("test",))
    images = ds.test.images
    assert images.shape[-1] == 3
    np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_rgb_images_become_grey_on_request(image_folder):
    root = image_folder(per_class=2)
    ds = load_dataset(root, channels=1, splits=("test",))
    expected = np.asarray(Image.open(root / ds.test.files[0]).convert("L"))
    np.testing.assert_array_equal(ds.test.images[0, ..., 0], expected)


def test_channels_default_to_rgb_when_any_image_is_colour(image_folder):
    root = image_folder(per_class=2, mode="L")
    write_image(root / "train" / "benign" / "colour.png", mode="RGB")
    assert load_dataset(root).channels == 3


def test_a_grey_scan_stored_as_an_rgb_jpeg_leaves_a_grey_data_set_grey(image_folder):
    root = image_folder(per_class=2, mode="L")
    scan = Image.open(root / "train" / "benign" / "000.png").convert("RGB")
    scan.save(root / "train" / "benign" / "export.jpg", quality=75)  # an RGB JPEG of grey
    assert load_dataset(root).channels == 1  # it made the model RGB, unfit for the grey tests


def test_a_colour_image_among_more_grey_rgb_files_than_are_sampled_makes_it_colour(tmp_path):
    root = tmp_path / "data"
    for split, cls in [(s, c) for s in ("train", "test") for c in ("benign", "malignant")]:
        for i in range(70):  # more than the COLOUR_CHECKS files sampled, spread evenly
            grey = np.full((16, 16), 40 + i, dtype=np.uint8)
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(grey).convert("RGB").save(root / split / cls / f"{i:03d}.jpg")
    colour = write_image(root / "train" / "benign" / "069-colour.png", (16, 16), "RGB", seed=1)
    ds = load_dataset(root, val_fraction=0)
    assert ds.channels == 3  # it was 1: the colour image turned grey without a word
    image = ds.train.images[ds.train.files.index("train/benign/069-colour.png")]
    np.testing.assert_array_equal(image, np.asarray(Image.open(colour)))
    assert load_dataset(root, val_fraction=0).channels == 3  # remembered with the file list


def _grey_as_rgb_with_a_colour_test_image(root: Path) -> None:
    """70 grey RGB JPEGs per class and split (more than the COLOUR_CHECKS files sampled) and one
    colour PNG in test/benign, which only decoding the test split notices."""
    for split, cls in [(s, c) for s in ("train", "test") for c in ("benign", "malignant")]:
        for i in range(70):
            grey = np.full((16, 16), 40 + i, dtype=np.uint8)
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(grey).convert("RGB").save(root / split / cls / f"{i:03d}.jpg")
    write_image(root / "test" / "benign" / "069-colour.png", (16, 16), "RGB", seed=1)


def test_a_split_cached_by_a_grey_load_does_not_make_a_judged_load_grey(tmp_path):
    _grey_as_rgb_with_a_colour_test_image(tmp_path / "data")
    load_dataset(tmp_path / "data", splits=("test",), channels=1)  # a grey model's evaluator
    assert load_dataset(tmp_path / "data", val_fraction=0).channels == 3  # 1: its cached test


def test_a_cached_split_that_did_not_record_its_colour_is_checked_again(tmp_path):
    _grey_as_rgb_with_a_colour_test_image(tmp_path / "data")
    load_dataset(tmp_path / "data", splits=("test",), channels=1)
    for meta in (tmp_path / "data" / ".cache").rglob("test-*.json"):  # as an older entry
        meta.write_text(
            json.dumps(
                {k: v for k, v in json.loads(meta.read_text()).items() if k != "shows_colour"}
            )
        )
    assert load_dataset(tmp_path / "data", val_fraction=0).channels == 3


def test_channels_default_to_grey_for_grey_images(image_folder):
    root = image_folder(per_class=2, mode="L")
    assert load_dataset(root).train.images.shape[-1] == 1


def test_16_bit_png_is_stretched_to_8_bit(image_folder):
    root = image_folder(per_class=1, mode="L")
    values = np.linspace(1000, 3000, 20 * 24).reshape(20, 24).astype(np.uint16)
    Image.fromarray(values).save(root / "test" / "benign" / "000.png")
    ds = load_dataset(root, splits=("test",))
    image = ds.test.images[0, ..., 0]
    assert image.min() == 0 and image.max() == 255
    assert (np.diff(image.astype(int), axis=1) >= 0).all()


def test_one_saturated_pixel_of_a_16_bit_png_leaves_its_contrast(image_folder):
    root = image_folder(per_class=1, mode="L")
    values = np.full((20, 24), 1000, np.uint16)
    values[:, 12:] = 1200  # two tissues, 200 levels apart
    values[0, 0] = 65535  # a burned-in marker: a min/max stretch made the image black
    Image.fromarray(values).save(root / "test" / "benign" / "000.png")
    image = load_dataset(root, splits=("test",)).test.images[0, ..., 0].astype(int)
    assert image[5:, 12:].mean() - image[5:, :10].mean() > 200
