"""Leakage check: exact and near duplicate images across splits, planted on purpose."""

import shutil
from collections import OrderedDict

import numpy as np
from PIL import Image

from dataloader import leakage, load_dataset
from dataloader.imageset import ImageSet
from dataloader.leakage import (
    NEAR_THRESHOLD,
    duplicate_clusters,
    fingerprints,
    label_conflict_note,
    leakage_report,
)


def test_an_exact_copy_in_test_is_reported_with_its_names(tiny_demo):
    shutil.copy(tiny_demo / "train/nevus/0001.png", tiny_demo / "test/nevus/copy.png")
    leakage = load_dataset(tiny_demo, val_fraction=0).stats["leakage"]
    assert leakage["exact"]["train/test"] == {
        "count": 1,
        "examples": [{"a": "train/nevus/0001.png", "b": "test/nevus/copy.png"}],
    }
    assert leakage["exact_total"] == 1 and leakage["near"]["train/test"]["count"] == 0


def test_a_brightened_noisy_copy_is_a_near_duplicate(tiny_demo):
    pixels = np.asarray(Image.open(tiny_demo / "train/melanoma/0002.png"), dtype=float)
    noisy = pixels + 8 + np.random.default_rng(0).normal(0, 2, pixels.shape)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(tiny_demo / "test/nevus/x.png")
    leakage = load_dataset(tiny_demo, val_fraction=0).stats["leakage"]
    assert leakage["exact_total"] == 0
    (example,) = leakage["near"]["train/test"]["examples"]
    assert example["a"] == "train/melanoma/0002.png" and example["b"] == "test/nevus/x.png"
    assert example["distance"] <= NEAR_THRESHOLD


def test_distinct_images_report_no_duplicates(tiny_demo):
    leakage = load_dataset(tiny_demo, val_fraction=0.3).stats["leakage"]
    assert set(leakage["exact"]) == {"train/val", "train/test", "val/test"}
    assert leakage["exact_total"] == 0 and leakage["near_total"] == 0


def test_npz_duplicates_are_named_by_split_and_index(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    test[2] = train[4]
    path = tmp_path / "d.npz"
    labels = np.array([[0], [1], [0], [1], [0], [1]])
    np.savez(path, train_images=train, train_labels=labels, test_images=test,
             test_labels=labels[:3])  # fmt: skip
    leakage = load_dataset(path, val_fraction=0).stats["leakage"]
    assert leakage["exact"]["train/test"]["examples"] == [{"a": "train[4]", "b": "test[2]"}]


def test_perceptual_hash_ignores_a_uniform_brightness_change():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 200, (1, 32, 32, 1), dtype=np.uint8)
    assert fingerprints(image)[1][0] == fingerprints(image + 20)[1][0]
    assert fingerprints(image)[1][0] != fingerprints(image[:, ::-1])[1][0]


def _noisy_copy(image: np.ndarray, seed: int = 0) -> np.ndarray:
    noisy = image + 8.0 + np.random.default_rng(seed).normal(0, 2, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def test_duplicate_clusters_join_exact_and_near_copies_transitively():
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28, 1), dtype=np.uint8)
    images[5] = images[2]  # exact
    images[7] = _noisy_copy(images[5])  # near, of the copy: joins 2 through 5
    images[9] = images[0]
    assert duplicate_clusters(images).tolist() == [0, 1, 2, 3, 4, 2, 5, 2, 6, 0]


def test_distinct_images_are_each_their_own_cluster(tiny_demo):
    train = load_dataset(tiny_demo, splits=("train",)).train
    assert duplicate_clusters(train.images).tolist() == list(range(len(train)))


def test_carved_validation_keeps_copies_with_their_original(tiny_demo):
    # A copy and a brightened noisy copy of every nevus: 12 duplicates that a split by image
    # would scatter over train and val.
    for i in range(6):
        src = tiny_demo / f"train/nevus/{i + 1:04d}.png"
        shutil.copy(src, tiny_demo / f"train/nevus/copy{i}.png")
        pixels = np.asarray(Image.open(src), dtype=float)
        Image.fromarray(_noisy_copy(pixels, i)).save(tiny_demo / f"train/nevus/noisy{i}.png")
    for seed in range(4):
        ds = load_dataset(tiny_demo, val_fraction=0.3, seed=seed)
        assert len(ds.val) > 0
        leakage = ds.stats["leakage"]
        assert leakage["exact"]["train/val"]["count"] == 0
        assert leakage["near"]["train/val"]["count"] == 0
        assert "12 duplicate image(s) kept with their copies" in ds.val_source


def test_copies_under_two_classes_are_label_conflicts(image_folder):
    root = image_folder(per_class=4)
    for i in range(4):  # every benign training image also in malignant/
        shutil.copy(root / f"train/benign/{i:03d}.png", root / f"train/malignant/copy{i}.png")
    shutil.copy(root / "test/benign/000.png", root / "test/benign/again.png")  # same class
    conflicts = load_dataset(root, val_fraction=0).stats["leakage"]["label_conflicts"]
    assert conflicts["count"] == 4
    assert conflicts["examples"][0] == {
        "files": ["train/benign/000.png", "train/malignant/copy0.png"],
        "classes": ["benign", "malignant"],
    }


def test_a_copy_in_test_under_another_class_is_a_label_conflict(tiny_demo):
    shutil.copy(tiny_demo / "train/nevus/0001.png", tiny_demo / "test/melanoma/copy.png")
    conflicts = load_dataset(tiny_demo, val_fraction=0.3).stats["leakage"]["label_conflicts"]
    assert conflicts["count"] == 1
    assert conflicts["examples"][0]["files"][-1] == "test/melanoma/copy.png"


def _near_copy_into(tiny_demo, target: str) -> None:
    pixels = np.asarray(Image.open(tiny_demo / "train/melanoma/0002.png"), dtype=float)
    Image.fromarray(_noisy_copy(pixels)).save(tiny_demo / target)


def test_a_near_copy_under_another_class_is_a_near_label_conflict(tiny_demo):
    _near_copy_into(tiny_demo, "test/nevus/x.png")
    leakage = load_dataset(tiny_demo, val_fraction=0).stats["leakage"]
    assert leakage["near_label_conflicts"] == {
        "count": 1,
        "examples": [
            {"files": ["train/melanoma/0002.png", "test/nevus/x.png"],
             "classes": ["melanoma", "nevus"]}
        ],
    }  # fmt: skip
    assert leakage["label_conflicts"]["count"] == 0


def test_a_near_copy_under_its_own_class_is_no_label_conflict(tiny_demo):
    _near_copy_into(tiny_demo, "test/melanoma/x.png")
    leakage = load_dataset(tiny_demo, val_fraction=0).stats["leakage"]
    assert leakage["near"]["train/test"]["count"] == 1
    assert leakage["near_label_conflicts"]["count"] == 0


def test_a_large_near_copy_group_shows_each_of_its_classes_first():
    images = np.random.default_rng(0).integers(0, 256, (9, 28, 28, 1), dtype=np.uint8)
    for i in range(1, 9):  # eight near copies of image 0, the last under the other class
        images[i] = _noisy_copy(images[0], seed=i)
    labels = np.array([0] * 8 + [1])
    train = ImageSet(images, labels, files=[f"train/{i}.png" for i in range(9)])
    conflicts = leakage_report({"train": train}, ["a", "b"])["near_label_conflicts"]
    assert conflicts["count"] == 1
    assert conflicts["examples"][0]["files"][:2] == ["train/0.png", "train/8.png"]
    assert len(conflicts["examples"][0]["files"]) == 5


def test_near_label_conflicts_are_not_looked_for_in_very_large_data(monkeypatch):
    from dataloader import leakage

    monkeypatch.setattr(leakage, "MAX_NEAR_CONFLICT_IMAGES", 5)
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    report = leakage_report({"train": ImageSet(images, np.array([0, 1] * 3))})
    assert report["near_label_conflicts"]["count"] is None
    assert "not looked for: 6 images, more than 5" in report["near_label_conflicts"]["skipped"]


def test_an_identical_copy_under_another_class_is_no_near_label_conflict(tiny_demo):
    shutil.copy(tiny_demo / "train/nevus/0001.png", tiny_demo / "test/melanoma/copy.png")
    leakage = load_dataset(tiny_demo, val_fraction=0).stats["leakage"]
    assert leakage["label_conflicts"]["count"] == 1  # counted once, as identical
    assert leakage["near_label_conflicts"]["count"] == 0


def test_a_class_folder_linked_to_its_own_split_repeats_every_image(image_folder):
    root = image_folder(per_class=2)
    (root / "train" / "all").symlink_to(root / "train")
    ds = load_dataset(root, val_fraction=0)
    conflicts = ds.stats["leakage"]["label_conflicts"]
    assert conflicts["count"] == 4
    assert conflicts["examples"][0]["classes"] == ["all", "benign"]


def test_near_label_conflicts_not_looked_for_are_said_to_be_unchecked():
    skipped = "not looked for: 40000 images, more than 30000 (all pairs are compared)"
    near = {"count": None, "examples": [], "skipped": skipped}
    leakage = {"label_conflicts": {"count": 0, "examples": []}, "near_label_conflicts": near}
    note = label_conflict_note(leakage, "stats.json")
    assert note.startswith("near-identical images under two classes were not looked for: 40000")
    assert note.endswith("stats.json lists examples under leakage.label_conflicts and "
                         "leakage.near_label_conflicts")  # fmt: skip


def test_no_label_conflicts_looked_for_and_found_is_no_note():
    leakage = {"label_conflicts": {"count": 0, "examples": []},
               "near_label_conflicts": {"count": 0, "examples": []}}  # fmt: skip
    assert label_conflict_note(leakage, "stats.json") is None


def test_images_looked_at_again_are_not_computed_again(monkeypatch):
    """A trainer's start looks at its images up to five times: the hash and thumbnail of an
    image are made once (by its pixels and its shape), and at most CACHE_IMAGES are kept."""
    monkeypatch.setattr(leakage, "_LOOKS", OrderedDict())
    monkeypatch.setattr(leakage, "CACHE_IMAGES", 6)
    made = []
    look = leakage._look
    monkeypatch.setattr(leakage, "_look", lambda image: made.append(image.shape) or look(image))
    images = np.random.default_rng(0).integers(0, 256, (4, 12, 8, 1), dtype=np.uint8)
    first = fingerprints(images)[1:]
    assert len(made) == 4
    again = fingerprints(images)[1:]
    assert len(made) == 4
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    turned = images.reshape(4, 8, 12, 1)  # the same bytes in another shape: another image
    assert not np.array_equal(fingerprints(turned)[2], first[1])
    assert made[4:] == [(8, 12, 1)] * 4 and len(leakage._LOOKS) == 6
