import os
import stat

import pytest

from common import atomic_replace_dir, atomic_write_bytes, atomic_write_json


def test_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def test_written_files_are_readable_by_other_users(tmp_path):
    target = atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert stat.S_IMODE(os.stat(target).st_mode) & stat.S_IROTH


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = atomic_write_bytes(tmp_path / "f.json", b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_replace_dir_swaps_the_whole_folder(tmp_path):
    dst = tmp_path / "run"
    dst.mkdir()
    (dst / "stale.txt").write_text("old")
    src = tmp_path / ".partial"
    src.mkdir()
    (src / "model.pth").write_text("new")
    atomic_replace_dir(src, dst)
    assert [p.name for p in dst.iterdir()] == ["model.pth"]
    assert not src.exists()
