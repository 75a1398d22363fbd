"""What a run records of its code, environment and sessions (``trainer.provenance``), and the
CPU thread count it trains with (``trainer.distributed.cpu_threads``); no training here."""

import hashlib
import importlib.metadata
import json
import re
import subprocess
from pathlib import Path

import mlflow
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


def test_no_git_checkout_is_unknown(tmp_path, monkeypatch):
    monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
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


# --- the commit of an image, the diff and untracked files of a checkout ---------------------

HASH = "0123456789abcdef0123456789abcdef01234567"


def _record(uri: str, root: Path) -> str:
    """A new run on ``uri`` whose one session ``record_session`` records from ``root``."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("provenance")
    with mlflow.start_run() as run:
        provenance.record_session(run.info.run_id, False, 1, None, torch.device("cpu"), 1, root)
    return run.info.run_id


def _artifact(uri: str, run_id: str, path: str) -> bytes:
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=uri)
    return Path(local).read_bytes()


def test_without_a_checkout_the_commit_is_the_one_the_image_was_built_from(tmp_path, monkeypatch):
    monkeypatch.setenv(provenance.COMMIT_ENV, HASH.upper())
    assert provenance.git_state(tmp_path) == {
        "commit": HASH, "source": "PIPELINE_GIT_COMMIT", "dirty": "unknown",
    }  # fmt: skip


def test_an_image_built_from_a_changed_tree_records_it_dirty(tmp_path, monkeypatch):
    monkeypatch.setenv(provenance.COMMIT_ENV, f"{HASH}-dirty")  # what BUILD_COMMIT prints then
    assert provenance.git_state(tmp_path) == {
        "commit": HASH, "source": "PIPELINE_GIT_COMMIT", "dirty": "true",
    }  # fmt: skip


def test_a_checkout_wins_over_the_image_commit(checkout, monkeypatch):
    monkeypatch.setenv(provenance.COMMIT_ENV, HASH)
    state = provenance.git_state(checkout)
    assert state["commit"] != HASH and state["source"] == "checkout"


def test_a_dirty_mark_without_a_commit_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(provenance.COMMIT_ENV, "-dirty")
    assert provenance.git_state(tmp_path) == {"commit": None, "dirty": "unknown"}


def test_an_image_commit_that_is_no_hash_is_not_recorded(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(provenance.COMMIT_ENV, "main")
    assert provenance.git_state(tmp_path) == {"commit": None, "dirty": "unknown"}
    assert "PIPELINE_GIT_COMMIT='main' is no commit hash (git describe --always" in caplog.text


def test_untracked_files_are_counted_and_ignored_ones_are_not(checkout):
    (checkout / ".git" / "info" / "exclude").write_text("*.log\n")
    (checkout / "sub").mkdir()
    for name in ("b.py", "sub/a.py", "run.log"):
        (checkout / name).write_text("y = 1\n")
    record = provenance.git_record(checkout)
    assert record.untracked == ["b.py", "sub/"] and record.state["untracked"] == 2  # a new folder


def test_a_diff_over_the_limit_keeps_the_whole_files_that_fit(checkout):
    for name in ("a.py", "b.py"):
        (checkout / name).write_text("old\n")
    _git(checkout, "add", ".")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "two")
    for name in ("a.py", "b.py"):
        (checkout / name).write_text("new\n" * 100)
    full = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=checkout, capture_output=True,
                          check=True).stdout  # fmt: skip
    second = full.index(b"diff --git a/b.py")
    diff = provenance.git_record(checkout, limit=second).diff  # the first file ends at it
    assert diff.patch == full[:second] and diff.truncated and diff.size == len(full)
    assert diff.sha256 == hashlib.sha256(full).hexdigest()  # of the whole diff
    assert provenance.git_record(checkout, limit=second - 1).diff.patch == b""  # none fits


def test_the_patch_applies_whatever_the_checkouts_diff_settings(checkout, tmp_path):
    _git(tmp_path, "clone", "-q", str(checkout), str(tmp_path / "copy"))
    _git(checkout, "config", "diff.noprefix", "true")  # no a/ and b/: git apply -p1 fails
    (checkout / "code.py").write_text("x = 2\n")
    (tmp_path / "session.patch").write_bytes(provenance.git_record(checkout).diff.patch)
    _git(tmp_path / "copy", "apply", str(tmp_path / "session.patch"))
    assert (tmp_path / "copy" / "code.py").read_text() == "x = 2\n"


def test_a_cut_diff_still_names_every_file_it_changes(checkout, mlflow_server, monkeypatch):
    monkeypatch.setattr(provenance, "DIFF_BYTES", 10)  # no whole file fits
    (checkout / "code.py").write_text("x = 2\n")
    (checkout / "more.py").write_text("y = 1\n")
    _git(checkout, "add", "more.py")  # staged: changed from HEAD too
    run_id = _record(mlflow_server, checkout)
    code = json.loads(_artifact(mlflow_server, run_id, "provenance/session-1.json"))
    assert code["diff"]["truncated"] and code["diff"]["kept_bytes"] == 0
    assert code["diff"]["changed"] == {"count": 2, "names": ["code.py", "more.py"],
                                       "truncated": False}  # fmt: skip
    patch = _artifact(mlflow_server, run_id, "provenance/session-1.patch").decode()
    assert "# TRUNCATED" in patch and "names every file changed" in patch


def test_every_installed_distribution_is_listed_as_pip_freeze_writes_it():
    lines = provenance.installed_packages()
    assert f"mlflow=={importlib.metadata.version('mlflow')}" in lines
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==\S+", line) for line in lines), lines
    names = [re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in lines]
    assert names == sorted(set(names)) and len(names) > 50  # by name, each once


def test_a_run_trained_in_an_image_carries_the_commit_it_was_built_from(
    tmp_path, monkeypatch, mlflow_server
):
    monkeypatch.setenv(provenance.COMMIT_ENV, HASH)
    tags = mlflow.get_run(_record(mlflow_server, tmp_path)).data.tags
    assert tags["mlflow.source.git.commit"] == HASH
    assert tags["pipeline.git_commit_source"] == "PIPELINE_GIT_COMMIT"
    assert tags["pipeline.git_dirty"] == "unknown"


def test_a_dirty_session_logs_the_patch_that_recovers_its_code(checkout, mlflow_server, tmp_path):
    (checkout / "image.bin").write_bytes(bytes(range(256)))
    _git(checkout, "add", "image.bin")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "binary")
    (checkout / "code.py").write_text("x = 2  # café\n")
    (checkout / "image.bin").write_bytes(bytes(range(255, -1, -1)))
    run_id = _record(mlflow_server, checkout)
    patch = tmp_path / "session.patch"
    patch.write_bytes(_artifact(mlflow_server, run_id, "provenance/session-1.patch"))
    copy = tmp_path / "copy"
    _git(tmp_path, "clone", "-q", str(checkout), str(copy))
    _git(copy, "apply", str(patch))
    assert (copy / "code.py").read_bytes() == (checkout / "code.py").read_bytes()
    assert (copy / "image.bin").read_bytes() == (checkout / "image.bin").read_bytes()


def test_the_session_record_counts_and_names_untracked_files(checkout, mlflow_server, monkeypatch):
    monkeypatch.setattr(provenance, "LISTED_NAMES", 2)
    for name in ("a.py", "b.py", "c.py"):
        (checkout / name).write_text("y = 1\n")
    run_id = _record(mlflow_server, checkout)
    [session] = json.loads(mlflow.get_run(run_id).data.tags["pipeline.sessions"])
    assert session["untracked"] == 3
    code = json.loads(_artifact(mlflow_server, run_id, "provenance/session-1.json"))
    assert code["untracked"] == {
        "count": 3, "names": ["a.py", "b.py"], "truncated": True, "withheld": 0
    }  # fmt: skip


def test_files_that_may_hold_secrets_or_patient_data_stay_out_of_the_record(
    checkout, mlflow_server
):
    """A secrets manifest filled in place, scans beside the code: counted, not copied."""
    (checkout / "secrets.yaml").write_text("token: CHANGE-ME\n")
    _git(checkout, "add", "secrets.yaml")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "template")
    (checkout / "secrets.yaml").write_text("token: s3cr3t-value\n")
    (checkout / "code.py").write_text("x = 2\n")
    (checkout / "MRN123.dcm").write_bytes(b"DICM")
    run_id = _record(mlflow_server, checkout)
    patch = _artifact(mlflow_server, run_id, "provenance/session-1.patch")
    assert b"s3cr3t-value" not in patch and b"x = 2" in patch and b"# WITHHELD: " in patch
    code = json.loads(_artifact(mlflow_server, run_id, "provenance/session-1.json"))
    assert code["diff"]["withheld"] == ["secrets.yaml"]
    assert code["diff"]["changed"]["names"] == ["code.py", "secrets.yaml"]
    assert code["untracked"]["count"] == 1 and code["untracked"]["withheld"] == 1
    assert "MRN123.dcm" not in json.dumps(code)


def test_each_session_logs_every_installed_package(tmp_path, mlflow_server):
    run_id = _record(mlflow_server, tmp_path)
    logged = _artifact(mlflow_server, run_id, "environment/session-1-packages.txt").decode()
    assert logged.splitlines() == provenance.installed_packages()
