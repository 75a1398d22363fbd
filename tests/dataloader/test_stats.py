"""Dataset statistics: counts, distribution, sizes, mean/std, skipped files."""

import json

import numpy as np

from dataloader import compute_stats, describe_skipped, load_dataset, training_stats
from tests.dataloader.conftest import write_image


def test_counts_and_distribution_per_split_and_class(image_folder):
    root = image_folder(classes=("a", "b"), per_class=3)
    write_image(root / "train" / "a" / "extra.png")
    stats = load_dataset(root, val_fraction=0).stats
    assert stats["counts"]["train"] == {"a": 4, "b": 3, "total": 7}
    assert stats["class_distribution"]["train"] == {"a": round(4 / 7, 6), "b": round(3 / 7, 6)}
    assert stats["counts"]["test"]["total"] == 6


def test_mean_and_std_are_over_train_in_unit_range(image_folder):
    ds = load_dataset(image_folder(per_class=3), val_fraction=0)
    pixels = ds.train.images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(ds.stats["mean"], pixels.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(ds.stats["std"], pixels.std(axis=0), atol=1e-6)
    assert ds.stats["mean_std_split"] == "train"


def test_original_sizes_min_max_and_most_common(image_folder):
    root = image_folder(per_class=2, size=(20, 24))
    write_image(root / "train" / "benign" / "small.png", size=(10, 30))
    write_image(root / "test" / "benign" / "big.png", size=(40, 12))
    sizes = load_dataset(root, image_size=16).stats["original_sizes"]
    assert sizes["min"] == [10, 12] and sizes["max"] == [40, 30]
    assert sizes["most_common"] == [20, 24] and sizes["distinct"] == 3


def test_skipped_files_are_listed_with_reasons(image_folder):
    root = image_folder(per_class=2)
    (root / "test" / "benign" / "bad.jpg").write_bytes(b"\xff\xd8\xff broken")
    stats = load_dataset(root).stats
    assert stats["skipped_count"] == 1
    assert stats["skipped"][0]["file"] == "test/benign/bad.jpg"
    assert stats["skipped"][0]["reason"]


def test_stats_are_json_and_name_source_and_hash(image_folder):
    root = image_folder()
    ds = load_dataset(root)
    stats = json.loads(json.dumps(ds.stats))
    assert stats["source"] == str(root) and len(stats["content_hash"]) == 64
    assert stats["channels"] == 3 and stats["image_size"] == [20, 24]


def test_compute_stats_recomputes_after_a_change(image_folder):
    ds = load_dataset(image_folder(per_class=4), val_fraction=0)
    ds.train = ds.train.subset(np.arange(3))
    assert compute_stats(ds)["counts"]["train"]["total"] == 3


def test_content_hash_changes_when_a_file_changes(image_folder):
    root = image_folder()
    before = load_dataset(root).content_hash
    write_image(root / "test" / "benign" / "000.png", size=(21, 24))
    assert load_dataset(root).content_hash != before


def test_skipped_files_are_one_line_counting_those_not_listed():
    # The evaluator's report keeps only the first files; the line counts them all.
    first = [{"file": "test/a/x", "reason": "empty file"}]
    assert describe_skipped(first, "metrics.json", count=2) == (
        "2 files were left out (unreadable, or not an image): test/a/x (empty file) and 1 more; "
        "metrics.json lists each with its reason"
    )
    assert describe_skipped([], "metrics.json", count=0) is None


def test_training_stats_are_the_model_building_part_of_the_statistics(tiny_demo):
    ds = load_dataset(tiny_demo, val_fraction=0.3)
    found = training_stats(ds)
    assert set(found) == {"image_size", "channels", "mean", "std", "mean_std_split", "modalities"}
    assert found == {key: ds.stats[key] for key in found}


def test_images_that_are_not_dicom_have_no_modality(tiny_demo):
    stats = load_dataset(tiny_demo, val_fraction=0.3).stats["modalities"]
    assert stats == {
        "counts": {},
        "no_modality": 0,
        "multi_frame": 0,
        "not_dicom": 18,
        "splits": ["train", "val"],
    }


def test_stats_say_how_validation_was_carved_and_from_how_many_units(image_folder):
    stats = load_dataset(image_folder(classes=("a", "b"), per_class=5), val_fraction=0.4).stats
    assert stats["val_how"] == "carved"
    # no groups and no copies: every training image is its own unit
    assert stats["val_carve_units"] == {"a": 5, "b": 5}


def test_stats_say_validation_came_from_its_folder_without_carving(image_folder):
    root = image_folder(classes=("a", "b"), per_class=2)
    for name in ("a", "b"):
        write_image(root / "val" / name / "v.png")
    stats = load_dataset(root).stats
    assert stats["val_how"] == "folder" and stats["val_carve_units"] is None


def _grey(path, values: np.ndarray) -> None:
    """A grey PNG of ``values`` (uint8: 8-bit; uint16: 16-bit)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(path)


def test_8_and_16_bit_exports_of_one_picture_are_counted_per_split_with_a_warning(tmp_path):
    """One picture exported at 8 and at 16 bits decodes to two different images (the 16-bit one
    is stretched between its percentiles, the 8-bit one read as stored); the statistics said
    nothing of the files' depths."""
    from dataloader.images import read_pixels

    picture = np.random.default_rng(0).integers(40, 180, (20, 24)).astype(np.uint8)
    root = tmp_path / "data"
    for split in ("train", "test"):
        for label in ("a", "b"):
            _grey(root / split / label / "8bit.png", picture)
    _grey(root / "train" / "a" / "16bit.png", picture.astype(np.uint16) * 257)
    eight, sixteen = (read_pixels(root / "train" / "a" / f"{n}.png") for n in ("8bit", "16bit"))
    assert np.abs(eight.astype(int) - sixteen).max() > 50  # the premise: not the same image
    stats = load_dataset(root, val_fraction=0).stats
    assert stats["bit_depths"]["per_split"] == {"train": {"8": 2, "16": 1}, "test": {"8": 2}}
    note = stats["bit_depths"]["note"]
    assert note.startswith(
        "8-bit and 16-bit PNG/JPEG images are mixed (train: 2 of 8 bits or fewer, 1 of 16; "
        "test: 2 of 8 bits or fewer, 0 of 16): 16-bit images are stretched"
    )
    assert "export them all at one depth" in note


def test_one_depth_throughout_gives_no_bit_depth_warning(image_folder, dicom_folder):
    assert load_dataset(image_folder(per_class=2)).stats["bit_depths"] == {
        "per_split": {"train": {"8": 4}, "test": {"8": 4}},
        "note": None,
    }
    # DICOM files count by BitsStored, not in the note: grey ones are stretched at any depth
    _grey(
        dicom_folder / "train" / "ct" / "8bit.png", np.arange(480, dtype=np.uint8).reshape(20, 24)
    )
    depths = load_dataset(dicom_folder, image_size=32, val_fraction=0).stats["bit_depths"]
    assert depths["per_split"]["train"] == {"8": 1, "16": 2} and depths["note"] is None
