"""How a run was made beyond its settings, for an auditor reading MLflow alone: the code (the
commit, whether tracked files differed from it, the diff itself and the untracked files), the
environment of each training session (every installed package, CPU, GPU, CPU threads) and the
sessions themselves (``pipeline.sessions``)."""

import fnmatch
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import torch

from common import available_cores, installed_version
from runs import contract

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy",
            "scikit-learn": "sklearn", "mlflow": "mlflow"}  # fmt: skip
# Room for the sessions tag (MLflow keeps 8000 characters of a tag; an entry takes about 250).
SESSIONS_CHARS = 6000
# The commit an image was built from (the Dockerfile's build argument GIT_COMMIT): the images
# hold no .git, so this is their only record of the code
COMMIT_ENV = contract.IMAGE_COMMIT_ENV
FROM_CHECKOUT = "checkout"  # pipeline.git_commit_source: `git rev-parse HEAD` in the code's folder
COMMIT_HASH = re.compile(r"[0-9a-f]{7,64}")
# What GIT_COMMIT is built with: the commit, "-dirty" after it when tracked files differ from it
BUILD_COMMIT = "git describe --always --dirty --abbrev=40 --exclude='*'"
DIFF_BYTES = 5 * 1024 * 1024  # the most of `git diff HEAD` a session logs as its patch
FILE_START = b"\ndiff --git "  # where the next file's part of a diff begins
LISTED_NAMES = 200  # the most untracked or changed file names a session lists (all are counted)
# Files whose contents may hold secrets or patient data (a secrets manifest filled in place, an
# .env, keys, images, arrays, tables such as a group manifest): their changes are counted and, if
# tracked, named, but never put in the patch, and untracked ones are not named. Matched on the
# lower-cased path, `*` across folders.
PRIVATE = ("*secret*", "*credential*", "*password*", "*token*", "*.env", "*.env.*", ".env*",
           "*/.env*", "*.pem", "*.key", "*.p12", "*.pfx", "*.dcm", "*.dicom", "*.png", "*.jpg",
           "*.jpeg", "*.tif", "*.tiff", "*.bmp", "*.npz", "*.npy", "*.csv", "*.tsv", "*.nii",
           "*.nii.gz", "*.sqlite*", "*.db")  # fmt: skip
# git may refresh the index under a lock while it reads: a user's `git commit` meanwhile failed
GIT_ENV = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}


def private(name: str) -> bool:
    """Whether the file ``name`` (a path in the checkout) is one of ``PRIVATE``."""
    return any(fnmatch.fnmatchcase(name.lower(), pattern) for pattern in PRIVATE)


def _git(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, timeout=timeout
        )
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass
class Diff:
    """``git diff HEAD --binary`` of a checkout: its SHA-256 (hex) and size in bytes,
    ``patch``: all of it, or when it is over the limit the whole files that fit in it, and
    ``files``: the names of all the files it changes (a cut patch lacks some), ``withheld``:
    those of them left out of ``patch`` (``private``)."""

    sha256: str
    size: int
    patch: bytes
    files: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    truncated: bool = False  # over the limit: whole files only


def _diff(root: Path, timeout: float, limit: int, without: list[str] = ()) -> Diff | None:
    """The diff of tracked files against HEAD (``without`` the files named), read as git writes
    it (hashed whole, at most ``limit`` bytes held); None when git fails or takes longer than
    ``timeout`` seconds."""
    # A patch `git apply` takes whatever the user's git config says (no textconv, a/ and b/)
    argv = ["git", "diff", "HEAD", "--no-color", "--no-ext-diff", "--binary", "--no-textconv",
            "--src-prefix=a/", "--dst-prefix=b/"]  # fmt: skip
    if without:
        argv += ["--", ".", *(f":(top,exclude,literal){name}" for name in without)]
    try:
        proc = subprocess.Popen(
            argv, cwd=root, env=GIT_ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError:
        return None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    digest, kept, size = hashlib.sha256(), bytearray(), 0
    try:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
            if len(kept) < limit + len(FILE_START):  # enough to see a file start at the limit
                kept += chunk[: limit + len(FILE_START) - len(kept)]
        code = proc.wait()
    finally:
        timer.cancel()
        proc.stdout.close()  # type: ignore[union-attr]
    if code != 0:
        return None
    if size > limit:  # whole files only: cut before the first file that does not fit
        cut = kept.rfind(FILE_START, 0, limit - 1 + len(FILE_START))  # its newline kept
        kept = kept[: cut + 1] if cut >= 0 else bytearray()
    return Diff(digest.hexdigest(), size, bytes(kept), truncated=size > limit)


def _untracked(root: Path, timeout: float) -> list[str] | None:
    """Files git neither tracks nor ignores (their names, relative to the checkout's top, sorted);
    None when git cannot tell."""
    found = _git(["status", "--porcelain=v1", "-z", "--untracked-files=normal", "--no-renames"],
                 root, timeout)  # fmt: skip
    if found is None or found.returncode != 0:
        return None
    entries = found.stdout.decode(errors="replace").split("\0")
    return sorted(entry[3:] for entry in entries if entry.startswith("?? "))


def _changed(root: Path, timeout: float) -> list[str]:
    """The tracked files that differ from HEAD (``git diff HEAD --name-only``); [] when git
    fails."""
    found = _git(["diff", "HEAD", "--name-only", "-z"], root, timeout)
    if found is None or found.returncode != 0:
        return []
    return sorted(name for name in found.stdout.decode(errors="replace").split("\0") if name)


def _image_commit() -> tuple[str | None, str]:
    """The commit ``PIPELINE_GIT_COMMIT`` names (7 to 64 hex digits) and whether the tree the
    image was built from differed from it: ``"true"`` for a ``-dirty`` suffix (``git describe
    --dirty``), else ``"unknown"``. None when unset or empty (an image built without
    GIT_COMMIT); logged and None when it is something else."""
    value = os.environ.get(COMMIT_ENV, "").strip().lower()
    commit, dirty = (value[: -len("-dirty")], "true") if value.endswith("-dirty") else (value, "")
    if (value and not commit) or (commit and not COMMIT_HASH.fullmatch(commit)):
        log.warning("%s=%r is no commit hash (%s gives one): no commit is recorded",
                    COMMIT_ENV, value, BUILD_COMMIT)  # fmt: skip
        return None, "unknown"
    return commit or None, dirty or "unknown"


@dataclass
class GitRecord:
    """The code a session runs: ``state`` (see ``git_state``), and for a checkout the ``diff``
    (when tracked files differ from the commit) and the ``untracked`` files (None: unknown)."""

    state: dict[str, Any]
    diff: Diff | None = None
    untracked: list[str] | None = field(default=None)


def git_record(root: Path = ROOT, timeout: float = 10, limit: int = DIFF_BYTES) -> GitRecord:
    """What git says of the code in ``root``; without a checkout (the images), the commit that
    ``PIPELINE_GIT_COMMIT`` names. A checkout wins over the variable."""
    found = _git(["rev-parse", "HEAD"], root, timeout)
    commit = found.stdout.decode().strip() if found and found.returncode == 0 else None
    if not commit:
        commit, dirty = _image_commit()
        state: dict[str, Any] = {"commit": commit, "dirty": dirty}
        return GitRecord({**state, "source": COMMIT_ENV} if commit else state)
    state = {"commit": commit, "source": FROM_CHECKOUT, "dirty": "unknown"}
    diff = _diff(root, timeout, limit)
    if diff is not None:
        state["dirty"] = "true" if diff.size else "false"
        if diff.size:
            state["diff_sha256"] = diff.sha256[:16]
            diff.files = _changed(root, timeout)
            if withheld := [name for name in diff.files if private(name)]:
                public = _diff(root, timeout, limit, withheld)  # the patch without them
                diff.patch = public.patch if public is not None else b""
                diff.truncated = public is None or public.truncated
                diff.withheld = withheld
    untracked = _untracked(root, timeout)
    if untracked is not None:
        state["untracked"] = len(untracked)
    return GitRecord(state, diff if diff is not None and diff.size else None, untracked)


def git_state(root: Path = ROOT, timeout: float = 10) -> dict[str, Any]:
    """``commit`` (None when ``root`` is no git checkout and no ``PIPELINE_GIT_COMMIT`` names
    one), ``source`` where a commit is known (``"checkout"``, or ``"PIPELINE_GIT_COMMIT"``: the
    commit an image was built from), ``dirty`` (``"true"`` when tracked files differ from that
    commit, ``"false"``, ``"unknown"`` when it cannot be told, as for an image built from a
    clean tree, whose ``PIPELINE_GIT_COMMIT`` names only the commit) and, for a
    checkout, ``untracked`` (how many files git neither tracks nor ignores) and when dirty
    ``diff_sha256``: the first 16 hex digits of the SHA-256 of ``git diff HEAD`` (two checkouts
    with the same commit and digest ran the same tracked code)."""
    return git_record(root, timeout).state


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
    return installed_version(package)


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


def installed_packages() -> list[str]:
    """Every distribution this Python finds, ``name==version`` as ``pip freeze`` writes them,
    sorted by name; where two share a name, the first on ``sys.path`` (the one imported). The
    run's ``environment/session-<k>-packages.txt``: ``pip install -r`` of it rebuilds the set."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), f"{name}=={dist.version}")
    return [found[key] for key in sorted(found)]


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


def _patch_text(git: GitRecord, number: int, run_id: str) -> bytes:
    """The session's ``provenance/session-<k>.patch``: a few ``#`` lines that ``git apply``
    skips (what it is, whether cut), then the diff."""
    diff = git.diff
    assert diff is not None
    head = [
        f"# git diff HEAD --binary of the code that trained session {number} of MLflow run "
        f"{run_id}: {diff.size} bytes, sha256 {diff.sha256}",
        f"# Recover that code: git checkout {git.state['commit']} && git apply <this file>",
    ]
    if diff.withheld:
        head.append(
            f"# WITHHELD: the changes of {len(diff.withheld)} file(s) that may hold secrets or "
            "patient data are not in this file (their names are in "
            f"{contract.PROVENANCE_DIR}/session-{number}.json): the code cannot be fully recovered"
        )
    if diff.truncated:
        head.append(
            f"# TRUNCATED: only its first {len(diff.patch)} bytes are kept (whole files, at most "
            f"{DIFF_BYTES}): the code cannot be fully recovered from this file; "
            f"{contract.PROVENANCE_DIR}/session-{number}.json names every file changed"
        )
    return "\n".join(head).encode() + b"\n" + diff.patch


def _listed(names: list[str], hidden: bool = False) -> dict[str, Any]:
    """``names`` counted, and the first LISTED_NAMES of them; ``hidden``: not those that are
    ``private`` (counted as ``withheld``)."""
    shown = [name for name in names if not (hidden and private(name))]
    kept = shown[:LISTED_NAMES]
    found = {"count": len(names), "names": kept, "truncated": len(kept) < len(shown)}
    return {**found, "withheld": len(names) - len(shown)} if hidden else found


def _code_json(git: GitRecord, number: int) -> dict[str, Any]:
    """The session's ``provenance/session-<k>.json``: the code beyond the sessions tag."""
    record: dict[str, Any] = {key: git.state.get(key) for key in ("commit", "source", "dirty")}
    record["diff"] = None
    if git.diff is not None:
        record["diff"] = {
            "file": f"{contract.PROVENANCE_DIR}/session-{number}.patch",
            "sha256": git.diff.sha256,
            "bytes": git.diff.size,
            "kept_bytes": len(git.diff.patch),
            "truncated": git.diff.truncated,
            "changed": _listed(git.diff.files),
            "withheld": git.diff.withheld,  # changed, but not in the patch (PRIVATE)
        }
    record["untracked"] = None if git.untracked is None else _listed(git.untracked, hidden=True)
    return record


def record_session(run_id: str, resumed: bool, start_epoch: int, member: int | None,
                   device: torch.device, world_size: int, root: Path = ROOT) -> None:  # fmt: skip
    """On the active run ``run_id``: a new run's code (``mlflow.source.git.commit``,
    ``pipeline.git_commit_source``, ``pipeline.git_dirty``, ``pipeline.git_diff_sha256``); every
    session's entry in ``pipeline.sessions``, its environment as ``environment/session-<k>.json``
    and ``environment/session-<k>-packages.txt``, its code as ``provenance/session-<k>.json``
    (and ``.patch`` when dirty), and ``pipeline.resumed`` once one resumed."""
    git = git_record(root, limit=DIFF_BYTES)
    code = {key: git.state[key] for key in ("commit", "source", "dirty", "diff_sha256",
                                            "untracked") if key in git.state}  # fmt: skip
    entry: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "start_epoch": start_epoch,
        **({"member": member + 1} if member is not None else {}),
        **code,
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
        if code["commit"]:
            tags["mlflow.source.git.commit"] = code["commit"]
            tags[contract.GIT_SOURCE_TAG] = code["source"]
        tags[contract.GIT_DIRTY_TAG] = code["dirty"]
        if "diff_sha256" in code:
            tags[contract.GIT_DIFF_TAG] = code["diff_sha256"]
    tags[contract.SESSIONS_TAG], number = _sessions(previous, resumed, entry)
    # The tag first: a session that dies between the two leaves its number taken, so the next
    # session writes its own files and not over this one's
    mlflow.set_tags(tags)
    session = f"session-{number}"
    mlflow.log_dict(environment(device), f"{contract.ENVIRONMENT_DIR}/{session}.json")
    packages = "".join(f"{line}\n" for line in installed_packages())
    mlflow.log_text(packages, f"{contract.ENVIRONMENT_DIR}/{session}-packages.txt")
    mlflow.log_dict(_code_json(git, number), f"{contract.PROVENANCE_DIR}/{session}.json")
    if git.diff is not None:  # bytes as git wrote them (any encoding, binary patches)
        with tempfile.TemporaryDirectory() as folder:
            patch = Path(folder) / f"{session}.patch"
            patch.write_bytes(_patch_text(git, number, run_id))
            mlflow.log_artifact(str(patch), contract.PROVENANCE_DIR)
