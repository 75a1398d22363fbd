"""``inspect_data``: what a split holds, read from headers, and kept only while the data stays."""

import os
from pathlib import Path

import numpy as np
import pytest

from dataloader import DataError, inspect_data, load_dataset
from tests.dataloader.conftest import write_image


def test_folder_summary_names_classes_channels_and_sizes(image_folder):
    root = image_folder(mode="L", size=(20, 24))
    found = inspect_data(root)
    assert (found.format, found.channels) == ("folder", 1)
    assert found.class_names == ["benign", "malignant"]
    assert set(found.sizes) == {(20, 24)}


def test_an_empty_class_folder_is_named_as_loading_names_it(image_folder):
    root = image_folder(mode="L", classes=("benign", "malignant", "normal"))
    for file in (root / "test" / "normal").iterdir():
        file.unlink()
    with pytest.raises(DataError, match=r"test/normal has no images; put .png"):
        inspect_data(root)
    with pytest.raises(DataError, match=r"test/normal has no images"):
        load_dataset(root, splits=("test",))


def test_a_class_folder_of_unreadable_files_only_is_named(image_folder):
    root = image_folder(mode="L")
    for i in range(3):
        (root / "test" / "normal" / f"{i}.png").parent.mkdir(exist_ok=True)
        (root / "test" / "normal" / f"{i}.png").write_text("not an image")
    with pytest.raises(DataError, match=r"test/normal has no readable images"):
        inspect_data(root)


def test_a_symlink_loop_in_a_class_folder_is_passed_over_as_loading_does(image_folder):
    root = image_folder(mode="L", size=(20, 24))
    folder = root / "test" / "benign"
    os.symlink(folder / "loopb", folder / "loopa")  # an evaluation request's 500 (ELOOP)
    os.symlink(folder / "loopa", folder / "loopb")
    assert set(inspect_data(root).sizes) == {(20, 24)}


def test_a_misspelt_split_folder_is_named_with_its_new_name(image_folder):
    root = image_folder(mode="L", splits=("train", "Test"))
    with pytest.raises(DataError, match=r"holds Test/, which is not read: .*Test/ → test/"):
        inspect_data(root)


def test_a_class_folder_added_after_an_inspection_is_seen(image_folder):
    root = image_folder(mode="L")
    assert inspect_data(root).n_classes == 2
    write_image(root / "test" / "normal" / "000.png", mode="L")
    assert inspect_data(root).class_names == ["benign", "malignant", "normal"]


def test_a_colour_image_added_to_a_class_after_an_inspection_is_seen(image_folder):
    root = image_folder(mode="L", per_class=2)
    assert inspect_data(root).channels == 1
    # Sorted first, so it is among the inspected sample of its class.
    write_image(root / "test" / "benign" / "0.png", mode="RGB")
    assert inspect_data(root).channels == 3


def test_the_version_changes_when_a_file_is_removed_and_only_then(image_folder):
    root = image_folder(mode="L", per_class=3)
    before = inspect_data(root).version
    assert before and inspect_data(root).version == before
    next((root / "test" / "benign").iterdir()).unlink()
    removed = inspect_data(root).version
    assert removed != before
    patient = root / "test" / "benign" / "patient-7"  # images of a class may sit in subfolders
    patient.mkdir()
    write_image(patient / "a.png", mode="L")
    added = inspect_data(root).version
    write_image(patient / "b.png", mode="L")
    assert len({before, removed, added, inspect_data(root).version}) == 4


def test_the_version_changes_when_a_file_is_rewritten_in_place(image_folder):
    root = image_folder(mode="L", per_class=3)
    before = inspect_data(root).version
    target = sorted((root / "test" / "benign").iterdir())[0]
    folder_mtime = target.parent.stat().st_mtime_ns
    with open(target, "r+b") as f:  # as `cp new.png old.png` does: the folder is untouched
        f.write(f.read()[::-1])
    os.utime(target.parent, ns=(folder_mtime, folder_mtime))
    assert inspect_data(root).version != before


def test_the_version_changes_when_a_file_s_bytes_change_under_a_restored_size_and_time(
    image_folder,
):
    """As ``tar`` or ``unzip`` leave a data set extracted over the old one."""
    root = image_folder(mode="L", per_class=3)
    before = inspect_data(root).version
    target = sorted((root / "test" / "benign").iterdir())[0]
    st, folder_mtime = target.stat(), target.parent.stat().st_mtime_ns
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.utime(target.parent, ns=(folder_mtime, folder_mtime))
    assert inspect_data(root).version != before


def test_the_version_changes_with_the_loaders_format(image_folder, monkeypatch):
    # A loader that reads other files (suffix-less DICOM since format 5) must not reuse a result.
    from dataloader import inspect as module

    root = image_folder(mode="L", per_class=2)
    before = inspect_data(root).version
    monkeypatch.setattr(module, "FORMAT_VERSION", module.FORMAT_VERSION + 1)
    monkeypatch.setattr(module, "_summaries", {})
    assert inspect_data(root).version != before


def test_an_npz_rewritten_after_an_inspection_is_read_again(tmp_path):
    path = tmp_path / "m.npz"
    labels = np.array([0, 1, 0, 1], dtype=np.uint8)
    np.savez(path, test_images=np.zeros((4, 28, 28), np.uint8), test_labels=labels)
    assert inspect_data(path).sizes == [(28, 28)]
    np.savez(path, test_images=np.zeros((4, 64, 64, 3), np.uint8), test_labels=labels)
    found = inspect_data(path)
    assert (found.sizes, found.channels) == ([(64, 64)], 3)


def test_the_summaries_kept_are_bounded(tmp_path, monkeypatch):
    from dataloader import inspect as module

    monkeypatch.setattr(module, "MAX_SUMMARIES", 3)
    monkeypatch.setattr(module, "_summaries", {})
    labels = np.array([0, 1], dtype=np.uint8)
    for i in range(5):
        path = tmp_path / f"m{i}.npz"
        np.savez(path, test_images=np.zeros((2, 28, 28), np.uint8), test_labels=labels)
        inspect_data(path)
    assert [Path(key[0]).name for key in module._summaries] == ["m2.npz", "m3.npz", "m4.npz"]


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((4, 28, 28), np.float32), [0, 1, 0, 1], "test_images is float32; expected uint8"),
        (np.zeros((4, 28, 28), np.uint8), [0.0, 1.0, 0.0, 1.0], "non-negative integer classes"),
        (np.zeros((4, 28, 28), np.uint8), [0, 1, 0], "must hold 4 non-negative integer classes"),
        (np.zeros((4, 28, 28), np.uint8), [[0, 1]] * 4, "multi-label datasets are not supported"),
        (np.zeros((4, 28, 28), np.uint8), [-1, -1, -1, -1], "non-negative integer classes"),
        (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), "test_images holds no images"),
    ],
)
def test_an_npz_that_loading_refuses_is_refused_by_its_inspection(tmp_path, images, labels,
                                                                  message):  # fmt: skip
    """What a request's check says at submission (a 422), not a job failing later."""
    path = tmp_path / "m.npz"
    np.savez(path, test_images=images, test_labels=np.array(labels))
    with pytest.raises(DataError, match=message):
        inspect_data(path)


def test_a_missing_test_split_is_named_without_asking_for_train(image_folder):
    root = image_folder(splits=("train",))  # evaluation reads only test/
    with pytest.raises(DataError) as raised:
        inspect_data(root)
    assert f"expected {root}/test/<class>/" in str(raised.value)
    assert "train/<class>" not in str(raised.value)
