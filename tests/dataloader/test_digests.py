"""A folder's content hash names its files and their bytes, not when they were written."""

import json
import os
import shutil

import numpy as np
from PIL import Image

from dataloader import load_dataset
from dataloader.cache import ArrayCache
from dataloader.digests import content_hash, file_digest, file_digests


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
        content_hash(file_digests(root, [rel[root]], ArrayCache(tmp_path / root.name, "x")))
        for root in (composed, decomposed)
    }
    assert len(hashes) == 1


def test_an_unreadable_file_is_hashed_by_its_name_without_failing(tmp_path):
    cache = ArrayCache(tmp_path / "cache", "x")
    assert file_digests(tmp_path, ["test/a/gone.png"], cache) == {"test/a/gone.png": "unreadable"}


def test_a_file_gone_since_leaves_the_cached_digests(image_folder, tmp_path):
    root = image_folder()
    _hash(root, tmp_path)
    (root / "test" / "benign" / "000.png").unlink()
    (root / "test" / "benign" / "001.png").rename(root / "test" / "benign" / "101.png")
    _hash(root, tmp_path)  # a new digest (the renamed file) makes it save the document
    [doc] = (tmp_path / "cache").glob("digests-*.json")
    cached = json.loads(doc.read_text())
    assert "test/benign/000.png" not in cached and "test/benign/001.png" not in cached
    assert "test/benign/101.png" in cached


def test_other_pixels_under_a_restored_size_and_time_are_decoded_anew(tmp_path):
    """Decoded images are cached by the files' contents: a data set extracted over the old one
    (tar restores sizes and times) is not served from the old one's pixels."""
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            for i in range(3):
                path = root / split / cls / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
                Image.fromarray(pixels).save(path, compress_level=0)  # size: by the dimensions
    first = load_dataset(root, splits=["test"], cache_dir=tmp_path / "cache").test.images.copy()
    target = root / "test" / "a" / "0.png"
    st = target.stat()
    Image.fromarray(255 - np.asarray(Image.open(target))).save(target, compress_level=0)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size
    again = load_dataset(root, splits=["test"], cache_dir=tmp_path / "cache").test.images
    assert not np.array_equal(first, again)


def test_each_splits_hash_is_that_of_a_load_of_the_split_alone(image_folder, tmp_path):
    """What the trainer records of the test split is what an evaluation of it finds."""
    root = image_folder()
    whole = load_dataset(root, cache_dir=tmp_path / "cache")
    assert whole.split_hashes["test"] == _hash(root, tmp_path) != whole.content_hash
    train = load_dataset(root, splits=["train"], cache_dir=tmp_path / "cache").content_hash
    assert whole.split_hashes["train"] == train != whole.split_hashes["test"]
