"""Scratch folders named after their owner process, so that the next process removes what a
killed one left.

A temporary folder removed on leaving (``TemporaryDirectory``) stays when its process is killed
(``kill -9``, out of memory, a lost container): an evaluation's or explanation's folder holds
patient images outside the managed stores, a download a model's worth of disk. ``scratch_dir``
names each folder ``<prefix><pid>-<host>-<random>`` and, before making one, removes the folders
of its family (``sweep``) whose owner is gone.
"""

import functools
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.fileio import TEMP_RANDOM

STALE_AFTER_S = 24 * 3600
"""A scratch folder untouched this long is removed whoever owns it: a pid reused by a restarted
container (its process 1 is the old one's too), another host's folder, a name from before owners
were named. No scratch folder is in use for a day (a download, a job's upload)."""

SWEEP_EVERY_S = 600
"""A folder's family is swept at most this often by one process: a make_scratch per model load
or artifact read would otherwise list the folder and read /proc each time, while what a killed
process left is no more urgent than its age (its files are only disk)."""
_swept: dict[tuple[str, str], float] = {}  # (folder, family) → when this process swept it


def _host() -> str:
    """This host's name as it goes into a folder name."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", socket.gethostname())[:64] or "_"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (another account's counts: it may be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # not ours to signal, or no pid at all: not known dead
        return True
    return True


# How much later than a folder's last change its pid's process must have started to be taken
# for another process with the same pid (clock steps make start times inexact by seconds).
REUSED_AFTER_S = 60


@functools.cache
def _boot_time() -> int:
    """When this host booted, in seconds since the epoch (``/proc/stat``'s btime)."""
    with open("/proc/stat", "rb") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(b"btime "))


def _started(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch (``/proc``); None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime
        return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _owner_gone(pid: int, changed: float) -> bool:
    """Whether the process that made a folder last changed at ``changed`` has ended: no process
    has its pid now, or the one that has started after the folder's last change (a pid used
    again: a restarted container's process 1 finds its predecessor's folders in an ``emptyDir``
    that outlived it)."""
    if not _alive(pid):
        return True
    started = _started(pid)
    return started is not None and started > changed + REUSED_AFTER_S


def sweep(folder: str | os.PathLike, family: str) -> list[Path]:
    """Remove the scratch folders in ``folder`` whose name is ``family`` (a regular expression of
    the prefix, e.g. ``re.escape("evaluation-")``) followed by ``<pid>-<host>-<random>`` where
    the pid runs no process on this host, or runs one started after the folder's last change (a
    pid used again: ``_owner_gone``), or whose folder is older than ``STALE_AFTER_S`` (any
    owner, and names without one: ``<family><random>``, made before owners were named).

    A live process's folder is taken only once it is a day old. Another host's folder (a shared
    volume) is judged by age alone, as this host cannot see its processes. Returns what it
    removed; a folder that cannot be listed or removed is left as it is."""
    pattern = re.compile(rf"(?:{family})(?:(?P<pid>\d+)-(?P<host>.+)-)?{TEMP_RANDOM}")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    here, now = _host(), time.time()
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if found is None:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            changed = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        old = now - changed > STALE_AFTER_S
        pid = found["pid"]
        gone = pid is not None and found["host"] == here and _owner_gone(int(pid), changed)
        if gone or old:
            shutil.rmtree(entry.path, ignore_errors=True)  # another account's: it stays
            if not os.path.lexists(entry.path):
                removed.append(Path(entry.path))
    return removed


def make_scratch(prefix: str, folder: str | os.PathLike | None = None,
                 family: str | None = None) -> Path:  # fmt: skip
    """A new folder ``<folder>/<prefix><pid>-<host>-<random>`` (mode 0700; ``folder`` None: the
    system's temporary folder), after ``sweep`` of ``family`` (None: this ``prefix``) there if
    this process has not swept it in the last ``SWEEP_EVERY_S``. The caller removes it;
    ``scratch_dir`` does on leaving."""
    folder = Path(folder if folder is not None else tempfile.gettempdir())
    family = family if family is not None else re.escape(prefix)
    now = time.monotonic()
    if now - _swept.get((str(folder), family), -SWEEP_EVERY_S) >= SWEEP_EVERY_S:
        sweep(folder, family)
        _swept[(str(folder), family)] = now
    return Path(tempfile.mkdtemp(dir=folder, prefix=f"{prefix}{os.getpid()}-{_host()}-"))


@contextmanager
def scratch_dir(prefix: str, folder: str | os.PathLike | None = None,
                family: str | None = None) -> Iterator[Path]:  # fmt: skip
    """``make_scratch`` as a context: the folder, removed on leaving (if still there)."""
    path = make_scratch(prefix, folder, family)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def umask_mode(mode: int = 0o777) -> int:
    """``mode`` less the process's umask: what ``mkdir`` gives. Read from ``/proc`` where it
    can be (setting the umask to read it would change it for other threads meanwhile)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(x for x in status if x.startswith("Umask:"))
        mask = int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return mode & ~mask
