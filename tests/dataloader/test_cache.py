"""The decoded-image cache: hits, rebuilds on change, fallbacks, atomic and bounded writes."""

import logging
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from dataloader import load_dataset
from tests.dataloader.conftest import write_image


def cache_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_second_load_reads_the_cached_array(image_folder):
    root = image_folder()
    first = load_dataset(root, val_fraction=0)
    second = load_dataset(root, val_fraction=0)
    assert isinstance(second.test.images, np.memmap)
    assert Path(second.test.images.filename).parent == root / ".cache"
    np.testing.assert_array_equal(first.test.images, second.test.images)
    assert second.test.files == first.test.files


def test_cached_arrays_can_be_modified_without_touching_the_cache(image_folder):
    root = image_folder()
    load_dataset(root, splits=("test",))
    ds = load_dataset(root, splits=("test",))
    before = ds.test.images[0].copy()
    ds.test.images[0] = 0  # copy-on-write memory map
    np.testing.assert_array_equal(load_dataset(root, splits=("test",)).test.images[0], before)


def test_changed_file_rebuilds_the_split(image_folder):
    root = image_folder(per_class=2)
    load_dataset(root, splits=("test",))
    path = root / "test" / "benign" / "000.png"
    write_image(path, seed=99)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    ds = load_dataset(root, splits=("test",))
    fresh = load_dataset(root, splits=("test",), cache_dir=root / "other-cache")
    np.testing.assert_array_equal(ds.test.images[0], fresh.test.images[0])


def test_added_file_rebuilds_the_split(image_folder):
    root = image_folder(per_class=2)
    assert len(load_dataset(root, splits=("test",)).test) == 4
    write_image(root / "test" / "benign" / "new.png", seed=5)
    assert len(load_dataset(root, splits=("test",)).test) == 5


def test_pixels_decoded_by_other_library_versions_are_not_read(image_folder, monkeypatch):
    """An upgrade of Pillow or pydicom may decode some file otherwise: the cache of the old
    decoders' pixels would go on feeding training what this process would not decode."""
    import dataloader.cache

    root = image_folder(per_class=2)
    load_dataset(root, splits=("test",))
    for cached in (root / ".cache").glob("test-*.npy"):
        np.load(cached, mmap_mode="r+")[:] = 0  # the old decoders' pixels, told apart
    assert not load_dataset(root, splits=("test",)).test.images.any()  # read from the cache
    upgraded = (*dataloader.cache.decoder_versions()[:-1], "99.0")
    monkeypatch.setattr(dataloader.cache, "decoder_versions", lambda: upgraded)
    assert load_dataset(root, splits=("test",)).test.images.any()


def test_new_image_size_is_a_new_entry(image_folder):
    root = image_folder(per_class=2)
    assert load_dataset(root, image_size=8, splits=("test",)).test.images.shape[1] == 8
    assert load_dataset(root, image_size=12, splits=("test",)).test.images.shape[1] == 12
    assert len([n for n in cache_files(root / ".cache") if n.startswith("test-")]) == 4


def test_old_entries_are_pruned(image_folder):
    root = image_folder(per_class=1)
    for size in (4, 5, 6, 7, 8):
        load_dataset(root, image_size=size, splits=("test",))
    assert len([n for n in cache_files(root / ".cache") if n.endswith(".npy")]) == 3


def test_no_temporary_files_are_left(image_folder):
    root = image_folder()
    load_dataset(root)
    assert not [n for n in cache_files(root / ".cache") if n.startswith(".")]


def test_a_day_old_temporary_copy_of_a_killed_writer_is_removed_by_the_next_save(image_folder):
    root = image_folder(per_class=1)
    load_dataset(root, image_size=4, splits=("test",))
    cache = root / ".cache"
    [entry] = [n for n in cache_files(cache) if n.endswith(".npy")]
    old, fresh = cache / f".{entry}.killed.tmp", cache / f".{entry}.writing.tmp"
    old.write_bytes(b"half a split")
    fresh.write_bytes(b"being written")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    load_dataset(root, image_size=5, splits=("test",))  # a save of the same split
    assert not old.exists() and fresh.exists()


def test_corrupt_cache_entry_is_rebuilt(image_folder):
    root = image_folder()
    expected = load_dataset(root, splits=("test",)).test.images.copy()
    for npy in (root / ".cache").glob("test-*.npy"):
        npy.write_bytes(b"not an array")
    np.testing.assert_array_equal(load_dataset(root, splits=("test",)).test.images, expected)


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """The temp dir (``tempfile.gettempdir()``) of the test: ``tmp_path/tmp``."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "tmp"


def _load_read_only(root: Path, times: int = 1):
    """The test split of ``root`` loaded ``times`` times with the folder read-only."""
    root.chmod(0o555)
    try:
        for _ in range(times):
            ds = load_dataset(root, splits=("test",))
    finally:
        root.chmod(0o755)
    return ds


def test_read_only_data_folder_falls_back_to_a_temp_cache(image_folder, temp_dir):
    root = image_folder()
    ds = _load_read_only(root, times=2)
    assert not (root / ".cache").exists()
    assert Path(ds.test.images.filename).is_relative_to(temp_dir)


def test_the_temp_dir_fallback_is_private_to_the_account(image_folder, temp_dir):
    _load_read_only(image_folder())
    [base] = temp_dir.iterdir()  # others could not plant arrays under its keys
    assert base.stat().st_uid == os.getuid() and base.stat().st_mode & 0o077 == 0


def test_a_cache_folder_linked_out_of_the_data_folder_is_not_written(
    image_folder, tmp_path, caplog
):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = image_folder()
    (root / ".cache").symlink_to(outside)
    with caplog.at_level(logging.WARNING, logger="dataloader.cache"):
        load_dataset(root, splits=("test",))
    assert list(outside.iterdir()) == []
    assert any("leads out of its folder and is not followed" in m for m in caplog.messages)


def test_the_temp_dir_fallback_is_not_a_folder_another_account_made(
    image_folder, tmp_path, temp_dir
):
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # as another account's: open to all (a link in its place is not used)
    (temp_dir / f"mlpipeline-cache-{os.getuid()}").symlink_to(planted)
    ds = _load_read_only(image_folder())
    assert len(ds.test) == 8 and list(planted.iterdir()) == []


def test_unwritable_cache_everywhere_still_loads(image_folder, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    monkeypatch.setattr(tempfile, "tempdir", str(locked))
    root = image_folder()
    ds = load_dataset(root, cache_dir=locked / "cache", splits=("test",))
    assert len(ds.test) == 8 and not isinstance(ds.test.images, np.memmap)


def _load_test_split(root: str) -> bytes:
    return load_dataset(root, splits=("test",)).test.images.tobytes()


def test_two_processes_building_the_cache_at_once_agree(image_folder):
    root = image_folder(per_class=6, size=(48, 48))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_load_test_split, [str(root)] * 4)
    assert len(set(results)) == 1
    assert _load_test_split(str(root)) == results[0]
    assert not [n for n in cache_files(root / ".cache") if n.startswith(".")]
