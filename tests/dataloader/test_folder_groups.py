"""Patients from folders: the folder below a class folder is the group when there is neither a
manifest nor a DICOM PatientID (``dataloader.groups.folder_groups``)."""

from pathlib import Path

import numpy as np
import pytest

from dataloader import DataError, load_dataset
from dataloader.groups import FOLDER_SOURCE, MIN_FOLDER_GROUPS, merge_duplicates
from tests.dataloader.conftest import write_dicom, write_image
from trainer.data_warnings import ungrouped_warning


def _patient_folders(root: Path, split: str, patients: range, per_patient: int = 3) -> None:
    """``root/split/<class>/patient-NN/<i>.png``: each patient's images under one class."""
    for n in patients:
        cls = ("benign", "malignant")[n % 2]
        for i in range(per_patient):
            write_image(root / split / cls / f"patient-{n:02d}" / f"{i}.png", seed=100 * n + i)


def _folders_of(files: list[str]) -> set[str]:
    return {f.split("/")[2] for f in files}


def test_patient_folders_are_the_groups_validation_is_carved_by(tmp_path):
    root = tmp_path / "data"
    _patient_folders(root, "train", range(20))
    _patient_folders(root, "test", range(20, 26))
    ds = load_dataset(root, val_fraction=0.2, seed=0)
    assert ds.val_how == "carved_by_group" and len(ds.val) > 0
    assert not _folders_of(ds.train.files) & _folders_of(ds.val.files)  # no patient on both sides
    groups = ds.stats["groups"]
    assert groups["source"] == FOLDER_SOURCE
    assert groups["per_split"]["test"] == 6 and groups["ungrouped"]["test"] == 0


def test_too_few_folders_to_be_patients_carve_image_by_image(image_folder):
    root = image_folder(per_class=6, splits=("train",))
    for image in sorted(root.rglob("*.png")):  # one images/ folder per class, as exports do
        (image.parent / "images").mkdir(exist_ok=True)
        image.rename(image.parent / "images" / image.name)
    ds = load_dataset(root, splits=("train", "val"), val_fraction=0.2, seed=0)
    assert ds.group_source == "none" and ds.stats["groups"] is None
    assert ds.val_how == "carved" and len(ds.val) == 2


def test_the_least_number_of_folders_makes_groups(tmp_path):
    fewer, enough = tmp_path / "fewer", tmp_path / "enough"
    _patient_folders(fewer, "train", range(MIN_FOLDER_GROUPS - 1))
    _patient_folders(enough, "train", range(MIN_FOLDER_GROUPS))
    assert load_dataset(fewer, splits=("train",)).group_source == "none"
    assert load_dataset(enough, splits=("train",)).group_source == FOLDER_SOURCE


def test_a_patient_folder_in_train_and_test_is_an_error_saying_where_the_groups_come_from(
    tmp_path,
):
    root = tmp_path / "data"
    _patient_folders(root, "train", range(12))
    _patient_folders(root, "test", range(10, 14))  # patients 10 and 11 in both
    with pytest.raises(DataError) as raised:
        load_dataset(root, val_fraction=0)
    message = str(raised.value)
    assert "2 group(s) (patients)" in message and "patient-10" in message
    assert "folders below the class folders" in message and "groups.csv" in message
    allowed = load_dataset(root, val_fraction=0, allow_group_overlap=True)
    assert allowed.stats["groups"]["overlap"]["train/test"]["count"] == 2


def test_test_folders_do_not_decide_how_validation_is_carved(tmp_path):
    root = tmp_path / "data"
    _patient_folders(root, "train", range(MIN_FOLDER_GROUPS - 1))
    _patient_folders(root, "test", range(50, 60))  # ten more folder names, in test only
    alone = load_dataset(root, splits=("train", "val"), val_fraction=0.2, seed=1)
    with_test = load_dataset(root, val_fraction=0.2, seed=1)
    assert alone.val_how == with_test.val_how == "carved"  # the trainer's two loads agree
    assert alone.val.files == with_test.val.files


def test_a_manifest_gives_the_groups_over_the_folders(tmp_path):
    root = tmp_path / "data"
    _patient_folders(root, "train", range(12))
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    (root / "groups.csv").write_text(
        "file,group\n" + "".join(f"{f},one-{i % 4}\n" for i, f in enumerate(files))
    )
    ds = load_dataset(root, splits=("train",))
    assert ds.stats["groups"]["source"].startswith("manifest ")
    assert ds.stats["groups"]["per_split"]["train"] == 4


def test_images_beside_the_patient_folders_are_counted_and_warned_of(tmp_path):
    root = tmp_path / "data"
    _patient_folders(root, "train", range(12))
    write_image(root / "train" / "benign" / "loose.png", seed=9999)
    stats = load_dataset(root, splits=("train",)).stats
    assert stats["groups"]["ungrouped"]["train"] == 1
    warning = ungrouped_warning(stats)
    assert "directly in their class folder" in warning and "PatientID" not in warning


def test_an_image_in_three_patients_folders_joins_none_of_them():
    groups = np.array(["p1", "p2", "p3", "p1", "p4", "p5"], dtype=object)
    clusters = np.array([0, 0, 0, 1, 2, 2])  # image 0's copies in p1-p3; image 2's in p4, p5
    assert merge_duplicates(groups, clusters).tolist() == ["p1", "p2", "p3", "p1", "p4", "p4"]


def test_a_blank_image_in_every_patient_folder_still_leaves_patients_to_carve(tmp_path):
    root = tmp_path / "data"
    _patient_folders(root, "train", range(12))
    for folder in (root / "train").glob("*/patient-*"):
        write_image(folder / "blank.png", seed=424242)  # the same pixels in every folder
    ds = load_dataset(root, splits=("train", "val"), val_fraction=0.2, seed=0)
    assert ds.val_how == "carved_by_group" and len(ds.val) > 0
    assert not _folders_of(ds.train.files) & _folders_of(ds.val.files)


def test_patient_ids_in_test_alone_do_not_change_how_train_is_grouped(tmp_path):
    root = tmp_path / "data"
    for n in range(12):
        for i in range(3):
            write_image(
                root / "train" / ("a", "b")[n % 2] / f"p{n:02d}" / f"{i}.png",
                (64, 64),
                "L",
                100 * n + i,
            )
    for cls in ("a", "b"):
        write_dicom(root / "test" / cls / "scan.dcm", patient=f"id-{cls}")
    alone = load_dataset(root, splits=("train", "val"), val_fraction=0.2, seed=2)
    with_test = load_dataset(root, val_fraction=0.2, seed=2)
    assert alone.group_source == with_test.group_source == FOLDER_SOURCE
    assert alone.val.files == with_test.val.files
