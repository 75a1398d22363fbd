"""The check, before training, that validation can choose a two-class decision threshold: its
advice follows how the loaded data's validation split was made (``DatasetSplits.val_how``)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common import InvalidInput
from dataloader import DatasetSplits, load_dataset
from trainer.operating_point import check_threshold_data


def _write(folder: Path, images: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")


def _distinct(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(n)]


def _refusal(ds: DatasetSplits) -> str:
    """The message refusing ``ds``'s validation split (it must lack a class)."""
    with pytest.raises(InvalidInput) as caught:
        check_threshold_data(ds.val.labels, ds.class_names, ds.val_how, ds.val_carve_units)
    return str(caught.value)


def _carved(root: Path, benign: list[np.ndarray], malignant: list[np.ndarray]) -> DatasetSplits:
    """train/ (and test/) of ``benign`` and ``malignant`` images, val carved at fraction 0.1."""
    for split in ("train", "test"):
        _write(root / split / "benign", benign)
        _write(root / split / "malignant", malignant)
    return load_dataset(root, splits=("train", "val"), val_fraction=0.1, cache_dir=root / "c")


def test_a_small_class_beside_copies_in_another_class_gets_a_validation_image(tmp_path):
    """3 distinct malignant images give 0.3 of one at fraction 0.1: the carve that keeps
    benign's copies together (by the patients' rule) takes one, so the threshold can be chosen
    (a carve without one refused the run, advising a larger fraction)."""
    benign = _distinct(20, seed=0)
    ds = _carved(tmp_path, benign + [benign[0]] * 3, _distinct(3, seed=1))
    assert ds.val_how == "carved_keeping_copies"
    check_threshold_data(ds.val.labels, ds.class_names, ds.val_how, ds.val_carve_units)
    assert sorted(set(ds.val.labels.tolist())) == [0, 1]


def test_a_small_class_of_a_plain_carve_is_advised_a_larger_fraction(tmp_path):
    """Every image its own unit: each class's share is carved exactly, 0.3 of an image is 0."""
    ds = _carved(tmp_path, _distinct(20, seed=0), _distinct(3, seed=1))
    assert ds.val_how == "carved"
    message = _refusal(ds)
    assert "use a larger --val-fraction" in message
    assert "no --val-fraction" not in message


def test_a_class_whose_images_are_all_copies_of_one_is_named_as_the_cause(tmp_path):
    ds = _carved(tmp_path, _distinct(20, seed=0), _distinct(1, seed=1) * 3)
    message = _refusal(ds)
    assert "copies of an image (exact or near) stay together" in message
    assert "the training images of 'malignant' are one such unit" in message
    assert "so no --val-fraction gives validation one" in message
    assert "use a larger --val-fraction" not in message


def test_a_val_folder_without_a_class_asks_for_its_images_not_a_val_fraction(tmp_path):
    for split, classes in (("train", ("benign", "malignant")), ("val", ("benign",))):
        for name in classes:
            _write(tmp_path / split / name, _distinct(3, seed=len(split + name)))
    ds = load_dataset(tmp_path, splits=("train", "val"), cache_dir=tmp_path / "c")
    message = _refusal(ds)
    assert "add images of 'malignant' to val/, or pass" in message
    assert "--val-fraction" not in message


def test_an_npz_s_val_split_without_a_class_names_the_file_s_val_split_not_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, labels in (("train", [0, 1] * 4), ("val", [0] * 4), ("test", [0, 1])):
        arrays[f"{split}_images"] = rng.integers(0, 256, (len(labels), 8, 8), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.array(labels, dtype=np.uint8).reshape(-1, 1)
    np.savez(tmp_path / "data.npz", **arrays)
    ds = load_dataset(tmp_path / "data.npz", splits=("train", "val"), cache_dir=tmp_path / "c")
    message = _refusal(ds)
    assert "the .npz file's own val split (val_images, val_labels)" in message
    assert "val/" not in message
