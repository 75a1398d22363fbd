"""What a run records of how it was made (``trainer.provenance``) and the CPU thread count it
trains with (``trainer.distributed.cpu_threads``); no training here."""

import os
import subprocess

import pytest

from trainer import provenance
from trainer.distributed import DistInfo, cpu_threads


def _git(folder, *args):
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return tmp_path


def test_a_clean_checkout_is_not_dirty_and_untracked_files_do_not_count(checkout):
    (checkout / "notes.txt").write_text("untracked\n")
    state = provenance.git_state(checkout)
    assert len(state["commit"]) == 40 and state["dirty"] == "false"
    assert "diff_sha256" not in state


def test_a_modified_tracked_file_is_dirty_with_a_digest_of_the_diff(checkout):
    (checkout / "code.py").write_text("x = 2\n")
    first = provenance.git_state(checkout)
    assert first["dirty"] == "true" and len(first["diff_sha256"]) == 16
    (checkout / "code.py").write_text("x = 3\n")
    assert provenance.git_state(checkout)["diff_sha256"] != first["diff_sha256"]
    (checkout / "code.py").write_text("x = 2\n")
    assert provenance.git_state(checkout) == first  # the same code, the same digest


def test_no_git_checkout_is_unknown(tmp_path):
    assert provenance.git_state(tmp_path) == {"commit": None, "dirty": "unknown"}


def test_threads_follow_omp_num_threads_unless_given(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads(0, DistInfo()) == 3  # it was overridden by the core count
    assert cpu_threads(0, DistInfo(world_size=2, local_world_size=2)) == 3
    assert cpu_threads(2, DistInfo()) == 2  # --threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")
    assert cpu_threads(0, DistInfo()) == 4
    cores = len(os.sched_getaffinity(0))
    for value in ("", "0", "many"):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert cpu_threads(0, DistInfo()) == cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpu_threads(0, DistInfo(world_size=2, local_world_size=2)) == max(1, cores // 2)
