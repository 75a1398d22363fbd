"""Atomic file writes (a temporary file in the same folder, then ``os.replace``), the removal of
the temporary files a killed writer left, and what a failed write says of its disk."""

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

# The random part of tempfile's names (mkstemp, mkdtemp).
TEMP_RANDOM = r"[a-z0-9_]{8}"
# What atomic_write_bytes names its temporary file: ".<name>.<random>.tmp".
_RANDOM_TMP = rf"\.{TEMP_RANDOM}\.tmp"
# A write that fails for want of room (a full disk, a quota, a file size limit).
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def free_space(folder: str | os.PathLike) -> str:
    """ "N MiB free there" of ``folder``'s file system, for a message about a failed write."""
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.0f} MiB free there"
    except OSError:
        return "its free space unknown"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; other services must read the file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_partial_writes(folder: str | os.PathLike, names: str) -> list[Path]:
    r"""Remove the temporary files that ``atomic_write_bytes`` left in ``folder`` when its
    process was killed mid-write of a file whose name matches ``names`` (a regular expression,
    e.g. ``r"last\.pt"``); returns them. Only for files whose writers the caller excludes (a
    lock it holds): a live writer's temporary file would go too."""
    partial = re.compile(rf"\.(?:{names}){_RANDOM_TMP}")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            if partial.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone meanwhile, or a read-only folder: left as it is
            continue
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


# What renaming a folder onto an existing path says: a folder with files, or another kind.
_OCCUPIED = (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR)


def atomic_replace_dir(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Move the complete folder ``src`` to ``dst``, replacing any previous ``dst`` as a whole.

    Writers may race (two threads of one dashboard downloading one run): each moves whatever
    holds ``dst`` aside under a name of its own (``.<name>.old-<pid>-<random>``) and tries
    again, so the last to finish wins and none fails; the copies moved aside are removed."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    aside, done = [], False
    try:
        for _ in range(100):
            try:
                os.replace(src, dst)
                done = True
                return dst
            except OSError as exc:
                if exc.errno not in _OCCUPIED:
                    raise
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}-{os.urandom(4).hex()}")
            try:
                os.replace(dst, old)
                aside.append(old)
            except FileNotFoundError:  # another writer moved it aside just now
                pass
        raise OSError(errno.EBUSY, f"{dst} kept being replaced by other writers", str(dst))
    finally:
        if not done and aside and not dst.exists():  # failed: the folder before stays
            with contextlib.suppress(OSError):
                os.replace(aside.pop(), dst)
        for old in aside:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
