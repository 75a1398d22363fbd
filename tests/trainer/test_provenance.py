"""What a run records of its code, environment and sessions (``trainer.provenance``), and the
CPU thread count it trains with (``trainer.distributed.cpu_threads``); no training here."""

import json
import subprocess

import pytest
import torch

from common import available_cores
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
    # several local processes: torchrun's own 1 cannot be told from a user's; cores shared
    cores = available_cores()  # the cores it may run on, under its CPU quota
    assert cpu_threads(0, DistInfo(world_size=2, local_world_size=2)) == max(1, cores // 2)
    assert cpu_threads(2, DistInfo()) == 2  # --threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")
    assert cpu_threads(0, DistInfo()) == 4
    for value in ("", "0", "many"):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert cpu_threads(0, DistInfo()) == cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpu_threads(0, DistInfo(world_size=2, local_world_size=2)) == max(1, cores // 2)


def test_the_environment_names_versions_with_their_build_and_the_threads():
    env = provenance.environment(torch.device("cpu"))
    assert env["packages"]["torch"] == torch.__version__  # with its +cu130 suffix when it has one
    assert env["packages"]["scikit-learn"] and env["packages"]["numpy"]
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["python"] and env["platform"] and env["cpu"] and "gpu" not in env
    json.dumps(env)  # logged as JSON


def test_a_thread_change_on_resume_is_one_line_of_warning(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert provenance.thread_change({"run_id": "r", "torch_threads": 2, "args": {}}) is None
    note = provenance.thread_change({"run_id": "r", "torch_threads": 1, "args": {"threads": 0}})
    assert "on 1 CPU threads and continues on 2" in note and "bit-identical" in note
    assert "\n" not in note
    # a checkpoint from before the count was kept: its --threads, when it named one
    assert "--threads 4" in provenance.thread_change({"run_id": "r", "args": {"threads": 4}})
    assert provenance.thread_change({"run_id": "r", "args": {"threads": 0}}) is None


def test_sessions_are_numbered_appended_and_kept_small():
    text, number = provenance._sessions(None, False, {"start_epoch": 1})
    assert number == 1 and json.loads(text) == [{"session": 1, "start_epoch": 1}]
    text, number = provenance._sessions(text, True, {"start_epoch": 5})
    assert number == 2 and [s["start_epoch"] for s in json.loads(text)] == [1, 5]
    # a run begun before the record: its sessions before this one are marked unrecorded
    text, number = provenance._sessions(None, True, {"start_epoch": 3})
    assert number == 2 and json.loads(text)[0] == {"session": 1, "recorded": False}
    big = {"start_epoch": 1, "pad": "x" * 400}
    text = None
    for _ in range(40):
        text, number = provenance._sessions(text, text is not None, big)
    sessions = json.loads(text)
    assert len(text) <= provenance.SESSIONS_CHARS and number == 40
    assert sessions[0]["session"] == 1 and sessions[-1]["session"] == 40
