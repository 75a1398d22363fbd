"""How a run was made beyond its settings, for an auditor reading MLflow alone: the code (the
commit and whether tracked files differed from it)."""

import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
