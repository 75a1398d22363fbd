"""Image folders: layout, resizing, corrupt files and every bad input (pixels and channels:
test_pixels.py)."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataloader import DataError, load_dataset
from tests.dataloader.conftest import write_image
from tests.images import png_declaring


def test_png_folder_loads_every_split_with_sorted_class_names(image_folder):
    root = image_folder(classes=("zeta", "alpha"), per_class=5)
    ds = load_dataset(root, val_fraction=0.2)
    assert ds.class_names == ["alpha", "zeta"]
    assert ds.train.images.shape == (8, 20, 24, 3) and ds.train.images.dtype == np.uint8
    assert ds.train.labels.dtype == np.int64
    assert len(ds.val) == 2 and len(ds.test) == 10
    assert ds.test.files[0] == "test/alpha/000.png" and ds.test.labels[0] == 0
    assert ds.test.files[-1] == "test/zeta/004.png" and ds.test.labels[-1] == 1


def test_a_file_name_that_is_not_utf8_is_named_with_escapes_that_can_be_written(image_folder):
    root = image_folder(mode="L")
    folder = os.fsencode(root / "test" / "benign")
    shutil.copy(folder + b"/000.png", folder + b"/\xff\xfe.png")  # bytes of no UTF-8 name
    files = load_dataset(root, splits=("test",)).test.files
    assert "test/benign/\\xff\\xfe.png" in files
    assert "\n".join(files).encode()  # a report or a digest of them raised UnicodeEncodeError


def test_an_unreadable_file_whose_name_is_not_utf8_is_listed_with_escapes(image_folder):
    root = image_folder(mode="L")
    (Path(os.fsdecode(root)) / "test" / "benign").joinpath(os.fsdecode(b"\xff.png")).write_text(
        "not an image"
    )
    skipped = load_dataset(root, splits=("test",)).skipped
    assert [s["file"] for s in skipped] == ["test/benign/\\xff.png"]  # a job result, as JSON


def test_an_error_naming_a_file_that_is_not_utf8_can_be_sent_as_json():
    from common import InvalidInput

    name = os.fsdecode(b"train/a/\xff.png")
    error = InvalidInput(f"{name} is not an image")
    assert json.dumps(str(error), ensure_ascii=False).encode()  # a 422's body; a 500 before


def test_pixels_are_the_file_pixels(image_folder):
    root = image_folder(per_class=1)
    ds = load_dataset(root, splits=("test",))
    expected = np.asarray(Image.open(root / ds.test.files[0]))
    np.testing.assert_array_equal(ds.test.images[0], expected)


def test_resizes_with_pil_bilinear_antialias(image_folder):
    root = image_folder(per_class=1, size=(40, 40))
    ds = load_dataset(root, image_size=(10, 12), splits=("test",))
    assert ds.test.images.shape == (2, 10, 12, 3)
    original = Image.open(root / ds.test.files[0]).convert("RGB")
    expected = np.asarray(original.resize((12, 10), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(ds.test.images[0], expected)


def test_image_size_defaults_to_the_size_most_training_images_share(image_folder):
    root = image_folder(per_class=2, size=(30, 20))
    write_image(root / "train" / "benign" / "000.png", size=(300, 20))  # odd, and sorts first
    write_image(root / "test" / "benign" / "005.png", size=(16, 16))
    write_image(root / "test" / "benign" / "006.png", size=(16, 16))
    ds = load_dataset(root)
    assert ds.image_size == (30, 20)
    assert ds.test.images.shape[1:3] == (30, 20)


def test_where_every_size_differs_the_size_is_the_median_height_and_width(image_folder):
    root = image_folder(per_class=1, size=(30, 20))  # train: benign/000, malignant/000
    write_image(root / "train" / "benign" / "000.png", size=(300, 90))  # odd, and sorts first
    write_image(root / "train" / "benign" / "001.png", size=(28, 18))
    write_image(root / "train" / "malignant" / "001.png", size=(32, 24))
    assert load_dataset(root, val_fraction=0).image_size == (30, 20)


def test_without_train_the_size_is_that_of_the_loaded_splits(image_folder):
    root = image_folder(per_class=2, size=(30, 20))
    write_image(root / "test" / "benign" / "000.png", size=(16, 16))
    assert load_dataset(root, splits=("test",)).image_size == (30, 20)


def test_min_image_size_scales_small_images_up_keeping_their_aspect(image_folder):
    root = image_folder(per_class=2, size=(30, 20))
    ds = load_dataset(root, min_image_size=40)
    assert ds.image_size == (60, 40)
    assert ds.test.images.shape[1:3] == (60, 40)


@pytest.mark.parametrize(("bound", "inside", "outside"), [("min", 20, 40), ("max", 30, 16)])
def test_a_size_bound_leaves_sizes_within_it_and_an_explicit_size_alone(
    image_folder, bound, inside, outside
):
    root = image_folder(per_class=1, size=(30, 20))
    key = f"{bound}_image_size"
    assert load_dataset(root, **{key: inside}, splits=("test",)).image_size == (30, 20)
    explicit = load_dataset(root, image_size=12, **{key: outside}, splits=("test",))
    assert explicit.image_size == (12, 12)


def test_max_image_size_scales_large_images_down_keeping_their_aspect(image_folder):
    root = image_folder(per_class=2, size=(30, 20))
    ds = load_dataset(root, max_image_size=15)
    assert ds.image_size == (15, 10)
    assert ds.test.images.shape[1:3] == (15, 10)


def test_max_image_size_wins_over_min_image_size(image_folder):
    root = image_folder(per_class=1, size=(30, 20))
    ds = load_dataset(root, min_image_size=40, max_image_size=45, splits=("test",))
    assert ds.image_size == (45, 30)


def test_photos_are_sized_and_read_upright_by_their_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90° counter-clockwise to display"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                stored = np.full((20, 40), 30 * i, dtype=np.uint8)
                Image.fromarray(stored).save(tmp_path / split / cls / f"{i}.jpg", exif=exif)
    ds = load_dataset(tmp_path, val_fraction=0)
    assert ds.image_size == (40, 20)
    assert ds.stats["original_sizes"]["most_common"] == [40, 20]


def test_jpeg_files_are_read(image_folder):
    ds = load_dataset(image_folder(per_class=2, suffix=".jpg"), splits=("test",))
    assert ds.test.images.shape == (4, 20, 24, 3)


def test_val_folder_is_used_instead_of_carving(image_folder):
    root = image_folder(splits=("train", "val", "test"), per_class=3)
    ds = load_dataset(root, val_fraction=0.5)
    assert len(ds.train) == 6 and len(ds.val) == 6
    assert ds.val_source == "folder"
    assert all(f.startswith("val/") for f in ds.val.files)


def test_missing_val_is_carved_stratified(image_folder):
    ds = load_dataset(image_folder(per_class=10), val_fraction=0.2, seed=3)
    assert np.bincount(ds.val.labels).tolist() == [2, 2]
    assert not set(ds.val.files) & set(ds.train.files)
    assert ds.val_source.startswith("carved from train")


def test_only_requested_splits_are_loaded(image_folder):
    ds = load_dataset(image_folder(splits=("test",)), splits=("test",))
    assert ds.train is None and ds.val is None and len(ds.test) == 8


def test_class_names_argument_sets_the_label_order(image_folder):
    root = image_folder(splits=("test",), classes=("b",))
    ds = load_dataset(root, splits=("test",), class_names=["a", "b", "c"])
    assert ds.class_names == ["a", "b", "c"]
    assert set(ds.test.labels.tolist()) == {1}


def test_corrupt_file_is_skipped_and_named(image_folder):
    root = image_folder(per_class=3)
    (root / "train" / "benign" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ds = load_dataset(root, val_fraction=0)
    assert len(ds.train) == 5
    assert "train/benign/001.png" not in ds.train.files
    [entry] = ds.stats["skipped"]
    assert entry["file"] == "train/benign/001.png" and entry["reason"]


def test_an_image_declaring_too_many_pixels_is_skipped_and_does_not_set_the_size(image_folder):
    root = image_folder(per_class=3, size=(20, 24))
    (root / "train" / "benign" / "000.png").write_bytes(png_declaring(8000, 6000))  # sorts first
    ds = load_dataset(root, val_fraction=0)
    assert ds.image_size == (20, 24) and len(ds.train) == 5
    [entry] = ds.stats["skipped"]
    assert entry["file"] == "train/benign/000.png"
    assert "8000×6000 px is more than the 40 megapixels" in entry["reason"]


def test_an_image_over_pillow_s_own_bomb_limit_is_skipped_with_the_same_reason(image_folder):
    root = image_folder(per_class=3, size=(20, 24))
    (root / "train" / "benign" / "000.png").write_bytes(png_declaring(20000, 20000))
    ds = load_dataset(root, val_fraction=0)
    [entry] = ds.stats["skipped"]
    assert "declares 400 megapixels, which is more than the 40 megapixels" in entry["reason"]


def test_a_gif_named_png_is_skipped_as_the_served_model_refuses_it(image_folder):
    root = image_folder(per_class=3, size=(20, 24))
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(
        root / "train" / "benign" / "000.png", format="GIF"
    )
    ds = load_dataset(root, val_fraction=0)
    [entry] = ds.stats["skipped"]
    assert entry["file"] == "train/benign/000.png"
    assert "GIF images are not accepted" in entry["reason"]


def test_a_deflated_dicom_is_skipped_naming_why(image_folder):
    import pydicom
    from pydicom.data import get_testdata_file

    root = image_folder(per_class=3, size=(20, 24))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    ds.save_as(root / "train" / "benign" / "000.dcm", enforce_file_format=True)
    loaded = load_dataset(root, val_fraction=0, channels=1)
    [entry] = loaded.stats["skipped"]
    assert entry["file"] == "train/benign/000.dcm" and "deflated DICOM" in entry["reason"]


def test_truncated_png_is_skipped_at_decode(image_folder):
    root = image_folder(per_class=3, size=(64, 64))
    path = root / "test" / "malignant" / "002.png"
    path.write_bytes(path.read_bytes()[:200])
    ds = load_dataset(root, splits=("test",))
    assert len(ds.test) == 5
    assert [s["file"] for s in ds.skipped] == ["test/malignant/002.png"]


def test_images_in_subfolders_of_a_class_folder_are_read(image_folder):
    root = image_folder(per_class=2)
    for i, study in enumerate(("patient-1/study-a", "patient-2")):
        moved = root / "train" / "benign" / study / f"{i}.png"
        moved.parent.mkdir(parents=True)
        (root / "train" / "benign" / f"00{i}.png").rename(moved)
    ds = load_dataset(root, val_fraction=0, splits=("train",))
    assert len(ds.train) == 4 and not ds.skipped
    assert "train/benign/patient-1/study-a/0.png" in ds.train.files


def test_empty_and_non_image_files_are_skipped_with_reasons(image_folder):
    root = image_folder(per_class=2)
    (root / "train" / "benign" / "empty.png").write_bytes(b"")
    (root / "train" / "benign" / "notes.txt").write_text("hello")
    (root / "train" / "benign" / "IM0007").write_bytes(b"")
    reasons = {s["file"]: s["reason"] for s in load_dataset(root).skipped}
    assert "0 bytes" in reasons["train/benign/empty.png"]
    assert "not a supported image type" in reasons["train/benign/notes.txt"]
    assert reasons["train/benign/IM0007"] == "empty file (0 bytes)"  # a PACS name, nothing sent


def test_a_png_is_read_as_a_png_whatever_its_name(image_folder):
    root = image_folder(per_class=1)
    folder = root / "test" / "benign"
    (folder / "000.png").rename(folder / "scan.dcm")  # misnamed on export
    (root / "test" / "malignant" / "000.png").rename(root / "test" / "malignant" / "scan")
    ds = load_dataset(root, splits=("test",))
    assert ds.test.files == ["test/benign/scan.dcm", "test/malignant/scan"] and ds.skipped == []
    np.testing.assert_array_equal(ds.test.images[0], np.asarray(Image.open(folder / "scan.dcm")))


def test_a_file_of_another_kind_named_png_says_what_it_is_not(image_folder):
    root = image_folder(per_class=2)
    (root / "train" / "benign" / "bad.png").write_bytes(b"exported by mistake\n" * 20)
    reasons = {s["file"]: s["reason"] for s in load_dataset(root).skipped}
    assert "not a PNG, JPEG or DICOM image" in reasons["train/benign/bad.png"]
    assert "BufferedReader" not in reasons["train/benign/bad.png"]


def test_missing_path_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"nowhere does not exist; expected a folder"):
        load_dataset(tmp_path / "nowhere")


def test_folder_without_splits_says_what_is_expected(tmp_path):
    write_image(tmp_path / "img.png")
    with pytest.raises(DataError, match=r"has no train/, val/ or test/ folder; expected .*train/"):
        load_dataset(tmp_path)


def test_missing_split_is_an_error(image_folder):
    root = image_folder(splits=("train",))
    with pytest.raises(DataError, match=r"test is missing; expected"):
        load_dataset(root)


def test_split_without_class_folders_is_an_error(image_folder):
    root = image_folder(splits=("train",))
    (root / "test").mkdir()
    with pytest.raises(DataError, match=r"test has no class folders"):
        load_dataset(root)


def test_empty_class_folder_is_an_error(image_folder):
    root = image_folder()
    (root / "train" / "extra").mkdir()
    with pytest.raises(DataError, match=r"train/extra has no images"):
        load_dataset(root)


def test_class_folder_with_only_corrupt_files_is_an_error(image_folder):
    root = image_folder(per_class=2)
    for path in (root / "test" / "benign").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"none of the 2 files in .*test/benign could be used"):
        load_dataset(root)


@pytest.mark.parametrize("name", ["validation", "Test"])
def test_a_split_folder_spelt_otherwise_is_an_error_not_left_out(image_folder, name):
    root = image_folder(per_class=2)
    write_image(root / name / "benign" / "x.png")
    with pytest.raises(DataError, match=rf"holds {name}/, which is not read.*{name}/ → "):
        load_dataset(root)


def test_test_class_unknown_to_train_is_an_error(image_folder):
    root = image_folder()
    write_image(root / "test" / "normal " / "x.png")  # a trailing space, shown quoted
    with pytest.raises(
        DataError, match=r"test/'normal ' is a class that the training classes \('benign', 'mal"
    ):
        load_dataset(root)


def test_a_class_name_spelt_in_another_unicode_form_is_the_same_class(image_folder):
    nfc, nfd = "b\u00e9nin", "be\u0301nin"  # "bénin" as Linux and as a macOS copy write it
    root = image_folder(classes=(nfc, "malin"), per_class=2)
    (root / "test" / nfc).rename(root / "test" / nfd)
    ds = load_dataset(root, val_fraction=0)
    assert list(ds.class_names) == [nfc, "malin"]
    assert sorted(ds.test.labels.tolist()) == [0, 0, 1, 1]


def test_file_that_is_not_npz_is_an_error(tmp_path):
    path = write_image(tmp_path / "x.png")
    with pytest.raises(DataError, match=r"x.png is a file but not a .npz"):
        load_dataset(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 2}, "channels must be 1"),
        ({"image_size": 0}, "image_size must be"),
        ({"image_size": (8, 8, 8)}, "image_size must be"),
        ({"val_fraction": 1.0}, "val_fraction must be"),
        ({"splits": ("train", "holdout")}, "splits must be"),
        ({"min_image_size": -1}, "min_image_size must be"),
        ({"min_image_size": 2.5}, "min_image_size must be"),
        ({"max_image_size": -1}, "max_image_size must be"),
        ({"max_image_size": 5000}, "max_image_size must be"),
    ],
)
def test_bad_arguments_are_clear_errors(image_folder, kwargs, message):
    with pytest.raises(DataError, match=message):
        load_dataset(image_folder(), **kwargs)


def test_test_only_labels_follow_the_training_classes(image_folder):
    root = image_folder(classes=("a", "b", "c"), per_class=1)
    for path in (root / "test" / "a").iterdir():
        path.unlink()
    (root / "test" / "a").rmdir()
    ds = load_dataset(root, splits=("test",))
    assert ds.class_names == ["a", "b", "c"]
    assert ds.test.labels.tolist() == [1, 2]


def test_numpy_integer_image_size_is_accepted(image_folder):
    ds = load_dataset(image_folder(per_class=1), image_size=np.int64(9), splits=("test",))
    assert ds.image_size == (9, 9)


def test_a_named_pipe_in_a_class_folder_is_skipped_not_waited_on(image_folder):
    root = image_folder(per_class=1)
    os.mkfifo(root / "test" / "benign" / "pipe")  # opening it for reading would block
    ds = load_dataset(root, splits=("test",))
    assert [s["file"] for s in ds.skipped] == ["test/benign/pipe"] and len(ds.test) == 2


def test_files_beside_the_class_folders_are_listed_as_skipped(image_folder):
    root = image_folder(per_class=2)
    shutil.copy(root / "train" / "benign" / "000.png", root / "train" / "stray.png")
    (root / "train" / "README.txt").write_text("how these images were exported")
    (root / "test" / ".DS_Store").write_bytes(b"\0")  # hidden: passed over without a word
    reasons = {s["file"]: s["reason"] for s in load_dataset(root).skipped}
    assert sorted(reasons) == ["train/README.txt", "train/stray.png"]  # they were dropped unsaid
    assert reasons["train/stray.png"].startswith("not inside a class folder")
