"""What a folder scan takes as classes and images: system folders and class names that are not
UTF-8 (``dataloader.scan``)."""

import os
import shutil

import pytest
from pydicom.data import get_testdata_file

from dataloader import DataError, load_dataset
from tests.dataloader.conftest import write_image


@pytest.mark.parametrize("name", ["@eaDir", "__MACOSX", "#recycle"])
def test_a_system_folder_beside_the_classes_is_no_class(image_folder, name):
    """A Synology NAS puts @eaDir/<class>/SYNOPHOTO_THUMB_S.jpg beside the class folders: it
    became a third class of thumbnails, trained on without a word."""
    root = image_folder()
    for split in ("train", "test"):
        write_image(root / split / name / "benign" / "SYNOPHOTO_THUMB_S.jpg")
    ds = load_dataset(root, val_fraction=0)
    assert ds.class_names == ["benign", "malignant"]
    assert len(ds.train) == 8
    skipped = {s["file"]: s["reason"] for s in ds.stats["skipped"]}
    assert f"train/{name}/" in skipped and "not images of a class" in skipped[f"train/{name}/"]


def test_a_system_folder_inside_a_class_is_not_read(image_folder):
    root = image_folder()
    write_image(root / "train" / "benign" / "@eaDir" / "000.png" / "SYNOPHOTO_THUMB_M.jpg")
    ds = load_dataset(root, val_fraction=0)
    assert len(ds.train) == 8
    assert "train/benign/@eaDir/" in {s["file"] for s in ds.stats["skipped"]}


def test_files_windows_explorer_leaves_are_passed_over_without_a_word(image_folder):
    """Thumbs.db counted among the files "left out (unreadable, or not an image)"."""
    root = image_folder()
    (root / "train" / "benign" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 thumbnails")
    (root / "train" / "desktop.ini").write_text("[.ShellClassInfo]")
    ds = load_dataset(root, val_fraction=0)
    assert len(ds.train) == 8 and ds.stats["skipped"] == []


def test_a_hidden_class_folder_is_listed_as_skipped_saying_why(image_folder):
    """A class folder named ".melanoma" vanished: two classes became one without a word."""
    root = image_folder()
    write_image(root / "train" / ".melanoma" / "000.png")
    write_image(root / "train" / ".ipynb_checkpoints" / "000-checkpoint.png")  # Jupyter's: silent
    ds = load_dataset(root, val_fraction=0)
    assert ds.class_names == ["benign", "malignant"]
    [(file, reason)] = [(s["file"], s["reason"]) for s in ds.stats["skipped"]]
    assert file == "train/.melanoma/" and "hidden folder" in reason and "without the dot" in reason


def test_a_class_folder_named_in_another_encoding_is_refused_with_the_name_to_give_it(
    image_folder,
):
    """b\\xe9nin (a Windows zip's é) trained, then broke the evaluator's CSV and the choice."""
    root = image_folder()
    for split in ("train", "test"):
        os.rename(os.fsencode(root / split / "benign"), os.fsencode(root / split) + b"/b\xe9nin")
    with pytest.raises(DataError) as caught:
        load_dataset(root, val_fraction=0)
    said = str(caught.value)
    assert "b\\xe9nin has a name that is not UTF-8" in said
    assert "rename it in every split, or unpack the archive again naming its encoding" in said


def test_one_class_name_in_two_unicode_forms_within_a_split_is_refused(image_folder):
    """A macOS copy (NFD) merged beside the original (NFC): both folders look like "bénin", and
    the images of both went to one label while the other, an empty class, was trained on."""
    nfc, nfd = "b\u00e9nin", "be\u0301nin"
    root = image_folder(classes=(nfc, "malin"), per_class=2)
    write_image(root / "train" / nfd / "copy.png")
    with pytest.raises(DataError, match=r"holds the class folders '[^']+' and '[^']+', one name "
                       r"written in two Unicode forms"):  # fmt: skip
        load_dataset(root, val_fraction=0)


@pytest.mark.parametrize("twin", ["Benign", "BENIGN"])
def test_one_class_name_in_two_letter_cases_within_a_split_is_refused(image_folder, twin):
    """train/Benign beside train/benign (two exports of one class; on macOS or Windows they
    cannot even coexist) made two classes, the images of one split between two labels."""
    root = image_folder(per_class=2)
    write_image(root / "train" / twin / "copy.png")
    with pytest.raises(DataError) as caught:
        load_dataset(root, val_fraction=0)
    said = str(caught.value)
    assert f"holds the class folders {twin!r} and 'benign', one name in two letter cases" in said
    assert "merge them (move the images of one into the other and remove it)" in said


@pytest.mark.parametrize("spelt", ["Malignant", "malignant "])  # letter case, a blank after it
def test_a_class_spelt_otherwise_in_another_split_is_that_class(image_folder, spelt):
    """As for Unicode forms: test/Malignant is train's malignant, named as train names it."""
    root = image_folder(per_class=2)
    os.rename(root / "test" / "malignant", root / "test" / spelt)
    ds = load_dataset(root, val_fraction=0)
    assert ds.class_names == ["benign", "malignant"]
    assert sorted(ds.test.labels.tolist()) == [0, 0, 1, 1]
    only_test = load_dataset(root, splits=("test",), class_names=["benign", "malignant"])
    assert only_test.class_names == ["benign", "malignant"]
    assert sorted(only_test.test.labels.tolist()) == [0, 0, 1, 1]


def test_a_class_folder_of_unusable_files_names_the_first_and_why(image_folder):
    """Three 0-byte PNGs made the folder "empty", its files and their reason unsaid."""
    root = image_folder(per_class=2)
    (root / "train" / "c").mkdir()
    for i in range(3):
        (root / "train" / "c" / f"{i}.png").touch()
    with pytest.raises(DataError) as caught:
        load_dataset(root, val_fraction=0)
    assert (
        f"none of the 3 files in {root / 'train' / 'c'} could be used (first: train/c/0.png: "
        "empty file (0 bytes)); replace them with valid .png"
    ) in str(caught.value)


def test_a_dicom_data_set_named_without_dcm_and_without_its_part_10_header_says_so(image_folder):
    """Named ``IM0001``, it was "not a supported image type", not the DICOM file it is."""
    root = image_folder(per_class=2)
    shutil.copy(get_testdata_file("ExplVR_LitEndNoMeta.dcm"), root / "train" / "benign" / "IM1")
    [entry] = load_dataset(root, val_fraction=0).skipped
    assert entry["file"] == "train/benign/IM1"
    assert entry["reason"].endswith("export it as a DICOM Part 10 file")


def test_one_class_name_with_a_blank_after_it_within_a_split_is_refused(image_folder):
    """train/benign and "train/benign " (which look alike in a listing) made two classes."""
    root = image_folder(per_class=2)
    write_image(root / "train" / "benign " / "copy.png")
    with pytest.raises(DataError, match=r"holds the class folders 'benign' and 'benign ', one "
                       r"name with a blank before or after it .*: merge them"):  # fmt: skip
        load_dataset(root, val_fraction=0)


def test_a_class_folder_linked_to_itself_is_listed_as_a_symlink_loop(image_folder):
    """It was listed as a file "not inside a class folder"."""
    root = image_folder(per_class=2)
    (root / "train" / "c").symlink_to(root / "train" / "c")
    skipped = {s["file"]: s["reason"] for s in load_dataset(root, val_fraction=0).skipped}
    assert skipped["train/c"].startswith("a symlink loop")
