import os
import stat
import subprocess
import sys
import threading

import pytest

from common import atomic_replace_dir, atomic_write_bytes, atomic_write_json, remove_partial_writes
from tests.conftest import ROOT


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


def test_writers_replacing_one_folder_at_once_all_succeed(tmp_path):
    """Two users of one dashboard downloading one run: the second rename met the first's
    folder (ENOTEMPTY), or both moved it aside under one name, and a download failed."""
    dst, n = tmp_path / "run", 8
    atomic_replace_dir(_folder(tmp_path / "first", "first"), dst)
    barrier, failed = threading.Barrier(n), []

    def write(round_: int, i: int) -> None:
        src = _folder(tmp_path / f".partial-{round_}-{i}", str(i))
        barrier.wait(timeout=60)
        try:
            atomic_replace_dir(src, dst)
        except OSError as exc:
            failed.append(exc)

    for round_ in range(5):
        threads = [threading.Thread(target=write, args=(round_, i)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failed == []
    assert len(list(dst.iterdir())) == 1  # one writer's whole folder
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing moved aside or partial


def test_a_replacement_that_fails_midway_leaves_the_folder_before(tmp_path, monkeypatch):
    import common.fileio

    dst = atomic_replace_dir(_folder(tmp_path / "first", "first"), tmp_path / "run")
    src, real, tries = _folder(tmp_path / ".partial", "new"), os.replace, []

    def replace(a, b):
        if a == src:
            tries.append(b)
            if len(tries) > 1:  # once the folder before is moved aside: the disk refuses
                raise PermissionError(13, "Permission denied")
        return real(a, b)

    monkeypatch.setattr(common.fileio.os, "replace", replace)
    with pytest.raises(PermissionError):
        atomic_replace_dir(src, dst)
    assert [p.name for p in dst.iterdir()] == ["first.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".partial", "run"]


def _folder(path, text: str):
    path.mkdir()
    (path / f"{text}.txt").write_text(text)
    return path


KILLED_MID_WRITE = """
import os, sys
from common import atomic_write_bytes
os.fsync = lambda fd: os._exit(9)  # killed after writing, before the rename: no cleanup runs
atomic_write_bytes(sys.argv[1], b"checkpoint")
"""


def test_remove_partial_writes_removes_a_killed_writers_temp_file_only(tmp_path):
    # another writer's temporary file (run_id.txt, being written) is not the caller's to take
    other = ".run_id.txt.abcd_123.tmp"
    for name in ("last.pt", "notes.tmp", ".hidden.tmp", "trainer.lock", other):
        (tmp_path / name).write_bytes(b"x")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, str(tmp_path / "last.pt")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60,
    )  # fmt: skip
    assert killed.returncode == 9
    [left] = [p for p in tmp_path.iterdir() if p.name.startswith(".last.pt.")]
    assert remove_partial_writes(tmp_path, r"last\.pt") == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".hidden.tmp",
        other,
        "last.pt",
        "notes.tmp",
        "trainer.lock",
    ]
