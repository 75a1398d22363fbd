"""How a run was made beyond its settings, for an auditor reading MLflow alone: the code (the
commit and whether tracked files differed from it), the environment of each training session
(package versions, CPU, GPU, CPU threads) and the sessions themselves (``pipeline.sessions``)."""

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import torch

from common import available_cores
from runs import contract

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy",
            "scikit-learn": "sklearn", "mlflow": "mlflow"}  # fmt: skip
# Room for the sessions tag (MLflow keeps 8000 characters of a tag; an entry takes about 200).
SESSIONS_CHARS = 6000


def _git(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(root: Path = ROOT, timeout: float = 10) -> dict[str, str | None]:
    """``commit`` (None when ``root`` is no git checkout, as in the images), ``dirty``
    (``"true"`` when tracked files differ from that commit, ``"false"``, ``"unknown"`` when it
    cannot be told) and, when dirty, ``diff_sha256``: the first 16 hex digits of the SHA-256 of
    ``git diff HEAD`` (two checkouts with the same commit and digest ran the same code)."""
    found = _git(["rev-parse", "HEAD"], root, timeout)
    commit = found.stdout.decode().strip() if found and found.returncode == 0 else None
    state: dict[str, str | None] = {"commit": commit or None, "dirty": "unknown"}
    if not commit:
        return state
    diff = _git(["diff", "HEAD", "--no-color", "--no-ext-diff", "--binary"], root, timeout)
    if diff is not None and diff.returncode == 0:
        state["dirty"] = "true" if diff.stdout else "false"
        if diff.stdout:
            state["diff_sha256"] = hashlib.sha256(diff.stdout).hexdigest()[:16]
    return state


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str, module: str) -> str | None:
    """The version as imported (torch's ``2.x+cu130``, with its local build suffix, which the
    package metadata lacks), else as installed; None when not installed."""
    loaded = sys.modules.get(module)
    if loaded is not None and isinstance(getattr(loaded, "__version__", None), str):
        return loaded.__version__
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """What this process trains with beyond the code and the settings: the run's
    ``environment/session-<k>.json``. The CPU thread count changes the weights."""
    env: dict[str, Any] = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus_available": available_cores(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "device": device.type,
        "packages": {name: _version(name, module) for name, module in PACKAGES.items()},
        "torch_cuda": torch.version.cuda,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def thread_change(state: dict[str, Any]) -> str | None:
    """One line when this session trains on another CPU thread count than the checkpoint's
    (its ``torch_threads``, or a ``--threads`` it was given; None when unknown)."""
    before = state.get("torch_threads") or state.get("args", {}).get("threads") or None
    now = torch.get_num_threads()
    if before is None or before == now:
        return None
    return (
        f"run {state['run_id']} was trained on {before} CPU threads and continues on {now}: its "
        f"weights will not be bit-identical to an uninterrupted run's (--threads {before} keeps "
        "them so); pipeline.sessions records it"
    )


def _sessions(previous: str | None, resumed: bool, entry: dict[str, Any]) -> tuple[str, int]:
    """The tag ``pipeline.sessions`` with ``entry`` appended as the next session (JSON, at most
    SESSIONS_CHARS: a long list keeps its first session and its last ones, their numbers
    showing the gap), and the number of this session."""
    try:
        sessions = json.loads(previous) if previous else []
    except ValueError:
        sessions = []
    if not isinstance(sessions, list):
        sessions = []
    if resumed and not sessions:  # a run begun before the record: its first session
        sessions = [{"session": 1, "recorded": False}]
    last = sessions[-1].get("session") if sessions and isinstance(sessions[-1], dict) else None
    number = last + 1 if isinstance(last, int) else len(sessions) + 1
    sessions.append({"session": number, **entry})
    text = json.dumps(sessions, separators=(",", ":"))
    while len(text) > SESSIONS_CHARS and len(sessions) > 2:
        del sessions[1]
        text = json.dumps(sessions, separators=(",", ":"))
    return text, number


def record_session(run_id: str, resumed: bool, start_epoch: int, member: int | None,
                   device: torch.device, world_size: int) -> None:  # fmt: skip
    """On the active run ``run_id``: a new run's code (``mlflow.source.git.commit``,
    ``pipeline.git_dirty``, ``pipeline.git_diff_sha256``); every session's entry in
    ``pipeline.sessions``, its environment as ``environment/session-<k>.json``, and
    ``pipeline.resumed`` once one resumed."""
    git = git_state()
    entry: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "start_epoch": start_epoch,
        **({"member": member + 1} if member is not None else {}),
        "commit": git["commit"],
        "dirty": git["dirty"],
        **({"diff_sha256": git["diff_sha256"]} if "diff_sha256" in git else {}),
        "threads": torch.get_num_threads(),
        "device": device.type,
        "world_size": world_size,
    }
    tags: dict[str, str] = {}
    previous = None
    if resumed:
        previous = mlflow.get_run(run_id).data.tags.get(contract.SESSIONS_TAG)
        tags[contract.RESUMED_TAG] = "true"
    else:
        if git["commit"]:
            tags["mlflow.source.git.commit"] = git["commit"]
        tags[contract.GIT_DIRTY_TAG] = git["dirty"]
        if "diff_sha256" in git:
            tags[contract.GIT_DIFF_TAG] = git["diff_sha256"]
    tags[contract.SESSIONS_TAG], number = _sessions(previous, resumed, entry)
    # The tag first: a session that dies between the two leaves its number taken, so the next
    # session writes its own file and not over this one's
    mlflow.set_tags(tags)
    mlflow.log_dict(environment(device), f"{contract.ENVIRONMENT_DIR}/session-{number}.json")
