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


def test_each_digest_is_cached_with_what_it_is_trusted_by(image_folder, tmp_path):
    root = image_folder()
    _hash(root, tmp_path)
    [doc] = (tmp_path / "cache").glob("digests-*.json")
    cached = json.loads(doc.read_text())
    path = root / "test" / "benign" / "000.png"
    st = path.stat()
    signature = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    assert cached["test/benign/000.png"] == [*signature, file_digest(path)]
    assert len(cached) == len(list((root / "test").rglob("*.png")))


def test_other_bytes_under_a_restored_size_and_time_change_the_hash(image_folder, tmp_path):
    """As ``tar`` or ``unzip`` leave a new version of a data set extracted over the old one."""
    root = image_folder()
    before = _hash(root, tmp_path)
    target = root / "test" / "benign" / "000.png"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _hash(root, tmp_path) != before


def test_names_in_either_unicode_form_give_one_hash(tmp_path):
    """macOS writes names decomposed (NFD): a copy from it keeps the data's hash."""
    composed, decomposed = tmp_path / "nfc", tmp_path / "nfd"
    for root, name in ((composed, "b\u00e9nin.png"), (decomposed, "be\u0301nin.png")):
        (root / "test" / "a").mkdir(parents=True)
        (root / "test" / "a" / name).write_bytes(b"same bytes")
    rel = {composed: "test/a/b\u00e9nin.png", decomposed: "test/a/be\u0301nin.png"}
    hashes = {
        content_hash(root, [rel[root]], ArrayCache(tmp_path / f"cache-{root.name}", "x"))
        for root in (composed, decomposed)
    }
    assert len(hashes) == 1


def test_an_unreadable_file_is_hashed_by_its_name_without_failing(tmp_path):
    cache = ArrayCache(tmp_path / "cache", "x")
    assert content_hash(tmp_path, ["test/a/gone.png"], cache) == content_hash(
        tmp_path, ["test/a/gone.png"], cache
    )
    assert file_digest(tmp_path / "test/a/gone.png") == "unreadable"
