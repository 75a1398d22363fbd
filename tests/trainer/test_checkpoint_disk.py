"""The checkpoint folder under faults of the disk: a trainer killed mid-write, a full disk."""

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT
from trainer import checkpoint, train

KILLED_MID_WRITE = """
import os, sys
from trainer import checkpoint
os.fsync = lambda fd: os._exit(9)  # killed after writing, before the rename: no cleanup runs
checkpoint.save(checkpoint.Path(sys.argv[1]), {"run_id": "a" * 32, "epoch": 1})
"""

FULL_DISK = """
import resource, sys
# a full disk as a process sees it: a file written past this size fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
from trainer.__main__ import run
sys.exit(run(sys.argv[2:]))
"""


def _python(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_holding_the_folder_removes_the_temp_file_of_a_trainer_killed_mid_write(tmp_path):
    killed = _python(KILLED_MID_WRITE, str(tmp_path / checkpoint.CHECKPOINT_NAME))
    assert killed.returncode == 9, killed.stderr
    assert [p.name for p in tmp_path.glob(".last.pt.*.tmp")] != []
    others = tmp_path / ".run_id.txt.abcd_123.tmp"  # another writer's, not a checkpoint's
    others.write_text("x")
    checkpoint.hold(tmp_path).release()
    assert list(tmp_path.glob(".last.pt.*.tmp")) == [] and others.exists()


def test_a_resume_folder_held_too_keeps_its_temp_files(tmp_path):
    """A --resume folder elsewhere is held so that no trainer writes it meanwhile; others may."""
    resume = tmp_path / "elsewhere"
    resume.mkdir()
    left = resume / ".last.pt.abcd_123.tmp"
    left.write_text("x")
    checkpoint.hold(resume, must_write=False).release()
    assert left.exists()


@pytest.mark.slow
def test_a_full_disk_while_checkpointing_is_one_clear_line_and_keeps_the_last_checkpoint(
    tmp_path, trainer_argv
):
    folder = tmp_path / "checkpoints"
    train([*trainer_argv(), "--max-epochs-this-session", "1"])
    kept = (folder / checkpoint.CHECKPOINT_NAME).read_bytes()
    said = _python(FULL_DISK, str(len(kept) // 2), *trainer_argv("--resume", "auto"))
    assert said.returncode == 2, said.stderr
    line = said.stderr.strip().splitlines()[-1]
    assert "Traceback" not in said.stderr
    assert line.startswith(f"error: the checkpoint {folder / checkpoint.CHECKPOINT_NAME} could")
    assert (
        "File too large" in line and "CHECKPOINT_DIR" in line and f"free space in {folder}" in line
    )
    assert (folder / checkpoint.CHECKPOINT_NAME).read_bytes() == kept
    assert torch.load(folder / checkpoint.CHECKPOINT_NAME, weights_only=False)["epoch"] == 1
    assert sorted(p.name for p in folder.iterdir()) == [checkpoint.CHECKPOINT_NAME, "trainer.lock"]
