"""Writing a MedMNIST file as an image folder."""

import numpy as np
import pytest
from PIL import Image

from dataloader import DataError, load_dataset
from dataloader.medmnist import import_medmnist


def test_val_goes_into_train_by_default(breastmnist, tmp_path):
    counts = import_medmnist(breastmnist, tmp_path / "out")
    assert counts == {"train": 546 + 78, "test": 156}
    assert not (tmp_path / "out" / "val").exists()
    assert (tmp_path / "out" / "train" / "0" / "val_00000.png").exists() or (
        tmp_path / "out" / "train" / "1" / "val_00000.png"
    ).exists()


def test_keep_val_writes_a_val_folder(breastmnist, tmp_path):
    counts = import_medmnist(breastmnist, tmp_path / "out", keep_val=True)
    assert counts == {"train": 546, "val": 78, "test": 156}
    ds = load_dataset(tmp_path / "out")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (546, 78, 156)


def test_written_pixels_and_labels_match_the_file(breastmnist, tmp_path):
    """A file is named by its image's index in the split, from 0, as evaluations count it."""
    import_medmnist(breastmnist, tmp_path / "out", class_names=["malignant", "benign"])
    raw = np.load(breastmnist)
    for index in (0, 141):
        name = ["malignant", "benign"][int(raw["test_labels"][index, 0])]
        image = np.asarray(Image.open(tmp_path / "out" / "test" / name / f"test_{index:05d}.png"))
        np.testing.assert_array_equal(image, raw["test_images"][index])


def test_refuses_a_folder_that_holds_a_dataset(breastmnist, image_folder):
    root = image_folder()
    with pytest.raises(DataError, match=r"train already holds images"):
        import_medmnist(breastmnist, root)


def test_class_name_with_a_slash_is_an_error(breastmnist, tmp_path):
    with pytest.raises(DataError, match=r"cannot be a folder name"):
        import_medmnist(breastmnist, tmp_path / "out", class_names=["a/b", "c"])


def test_a_class_name_given_twice_is_an_error(breastmnist, tmp_path):
    with pytest.raises(DataError, match=r"class name 'benign' is given twice"):
        import_medmnist(breastmnist, tmp_path / "out", class_names=["benign", "benign"])
    assert not (tmp_path / "out").exists()


def test_more_class_names_than_classes_is_an_error(breastmnist, tmp_path):
    with pytest.raises(DataError, match=r"3 class names were given .* file with 2 classes"):
        import_medmnist(breastmnist, tmp_path / "out", class_names=["a", "b", "c"])
