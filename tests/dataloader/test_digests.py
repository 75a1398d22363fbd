"""A folder's content hash names its files and their bytes, not when they were written."""

import json
import os
import shutil

from dataloader import load_dataset
from dataloader.cache import ArrayCache
from dataloader.digests import content_hash, file_digest


def _hash(root, tmp_path) -> str:
    return load_dataset(root, splits=["test"], cache_dir=tmp_path / "cache").content_hash


def test_a_copy_with_new_modification_times_keeps_the_hash(image_folder, tmp_path):
    root = image_folder()
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, copy_function=shutil.copyfile)  # new times, as a sync makes
    later = root.stat().st_mtime_ns + 10**10
    for path in (copy / "test").rglob("*.png"):
        os.utime(path, ns=(later, later))
    assert _hash(copy, tmp_path) == _hash(root, tmp_path)


def test_a_file_with_other_bytes_changes_the_hash(image_folder, tmp_path):
    root = image_folder()
    before = _hash(root, tmp_path)
    target = root / "test" / "benign" / "000.png"
    shutil.copyfile(root / "test" / "benign" / "001.png", target)
    assert _hash(root, tmp_path) != before


def test_a_renamed_file_changes_the_hash(image_folder, tmp_path):
    root = image_folder()
    before = _hash(root, tmp_path)
    (root / "test" / "benign" / "000.png").rename(root / "test" / "benign" / "100.png")
    assert _hash(root, tmp_path) != before


def test_each_digest_is_cached_with_the_files_size_and_time(image_folder, tmp_path):
    root = image_folder()
    _hash(root, tmp_path)
    [doc] = (tmp_path / "cache").glob("digests-*.json")
    cached = json.loads(doc.read_text())
    path = root / "test" / "benign" / "000.png"
    st = path.stat()
    assert cached["test/benign/000.png"] == [st.st_size, st.st_mtime_ns, file_digest(path)]
    assert len(cached) == len(list((root / "test").rglob("*.png")))


def test_an_unreadable_file_is_hashed_by_its_name_without_failing(tmp_path):
    class Missing:
        rel, size, mtime_ns = "test/a/gone.png", 1, 1

    cache = ArrayCache(tmp_path / "cache", "x")
    assert content_hash(tmp_path, [Missing()], cache) == content_hash(tmp_path, [Missing()], cache)
    assert file_digest(tmp_path / "test/a/gone.png") == "unreadable"
