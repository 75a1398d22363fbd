"""Scratch folders as a process left them (``common.scratch_dir``'s names), for the tests that a
killed process's folder is removed and a live one's kept."""

import subprocess
from pathlib import Path

from common.scratch import _host


def ended_pid() -> int:
    """The pid of a process that has ended (and was waited for)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def left_by(folder: Path, prefix: str, pid: int, host: str | None = None) -> Path:
    """The folder ``<prefix><pid>-<host>-<random>`` with a file in it, as process ``pid`` of
    ``host`` (None: this one) left it."""
    path = folder / f"{prefix}{pid}-{host or _host()}-abcd_123"
    path.mkdir(parents=True)
    (path / "image.png").write_bytes(b"patient")
    return path
