"""The decoded-image cache: one uint8 ``.npy`` per split plus a JSON sidecar, keyed by a hash.

The key covers everything the pixels depend on (file names and the digests of their bytes,
``dataloader.digests``; image size, channels), so a changed file, size or channel count simply
misses and rebuilds, and a file touched or copied with the same bytes does not.
Files are written to a temporary name and moved into place, so a reader never sees a partial
array. The cache is an optimisation only: any failure to read or write it is ignored.
"""

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from common import STALE_AFTER_S, installed_version, umask_mode
from mlpipeline_model import DECODING_VERSION

# Bump it when loading changes which files a split keeps (decoding itself has its own version,
# mlpipeline_model.pixels.DECODING_VERSION, which models record). 1: images that do not fit the
# size a data set is resized to (``mlpipeline_model.misfit``: a thumbnail, a strip) are skipped.
# 2: DICOM files declaring more than ``mlpipeline_model.MAX_FRAMES`` frames are skipped. 3: DICOM
# files with zero-length rescale or window attributes are read (as without them), not skipped.
LOADER_VERSION = 3
# Part of every key, so that no cache written before either changed is read.
FORMAT_VERSION = DECODING_VERSION * 1000 + LOADER_VERSION
log = logging.getLogger(__name__)
KEEP_PER_NAME = 3  # entries kept per split name (e.g. two image sizes in use at once)


@cache
def decoder_versions() -> tuple[str | None, ...]:
    """The versions of the libraries that decode the images (Pillow, pydicom, GDCM, NumPy): part
    of every key, so that pixels decoded by other versions (before an upgrade, which may decode
    some file otherwise) are not read as what this process would decode."""
    return tuple(installed_version(n) for n in ("pillow", "pydicom", "python-gdcm", "numpy"))


def make_key(*parts: Any) -> str:
    """A short stable hash of JSON-able ``parts``, the cache's format and the decoders."""
    text = json.dumps(
        [FORMAT_VERSION, decoder_versions(), *parts], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _source_folder(source: str) -> str:
    """The name of ``source``'s cache folder under the temporary folder."""
    return hashlib.sha256(json.dumps([FORMAT_VERSION, source]).encode()).hexdigest()[:16]


def _writable(folder: Path) -> bool:
    """Whether ``folder`` can be created and written (honouring read-only modes even for root)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not os.access(existing, os.W_OK | os.X_OK) or not existing.stat().st_mode & 0o222:
            return False
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def _confined(folder: Path) -> bool:
    """Whether ``folder`` lies where it is named: a ``.cache`` linked elsewhere (out of the data
    folder) is not used, so loading writes nothing outside the folder it was given."""
    try:
        return folder.resolve().parent == folder.parent.resolve()
    except OSError:
        return False


def _private(base: Path) -> bool:
    """Whether ``base`` (the temp-dir fallback) is this user's own folder, made if need be: in a
    shared temp dir another account could make the folder first, or link it, and plant arrays
    under the keys a data set will ask for."""
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        st = base.lstat()
    except OSError:
        return False
    return not base.is_symlink() and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _atomic_save(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, umask_mode(0o666))  # mkstemp makes 0600; others may read the data too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArrayCache:
    """Cache entries under ``folder``; falls back to a temp dir, or to no cache at all.

    Args:
        preferred: The folder to use when it is writable and, unless ``chosen`` (named by
            the caller, not the default ``<data dir>/.cache``), not linked out of its parent.
        source: Identifies the dataset, to give it its own folder under the temp-dir fallback
            (``mlpipeline-cache-<uid>``, this user's alone).
    """

    def __init__(self, preferred: Path, source: str, chosen: bool = False) -> None:
        base = Path(tempfile.gettempdir()) / f"mlpipeline-cache-{os.getuid()}"
        self.folder: Path | None = None
        confined = chosen or _confined(preferred)
        if not confined:
            log.warning("%s leads out of its folder and is not followed: the decoded images are "
                        "cached in %s instead", preferred, base)  # fmt: skip
        if confined and _writable(preferred):
            self.folder = preferred
        # named by the source alone: a library upgrade changes the keys of its files, not it
        elif _private(base) and _writable(folder := base / _source_folder(source)):
            self.folder = folder

    def _paths(self, name: str, key: str) -> tuple[Path, Path]:
        assert self.folder is not None
        return self.folder / f"{name}-{key}.npy", self.folder / f"{name}-{key}.json"

    def load(self, name: str, key: str) -> tuple[np.ndarray, dict] | None:
        """The cached array (memory-mapped copy-on-write) and its metadata, or None."""
        if self.folder is None:
            return None
        npy, meta_path = self._paths(name, key)
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(npy, mmap_mode="c", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if array.dtype != np.uint8 or len(array) != meta.get("count"):
            return None
        return array, meta

    def save(self, name: str, key: str, array: np.ndarray, meta: dict) -> None:
        """Store ``array`` (uint8) and ``meta``; drop the oldest entries of ``name``."""
        if self.folder is None:
            return
        npy, meta_path = self._paths(name, key)
        meta = {**meta, "count": len(array)}
        try:
            _atomic_save(npy, lambda f: np.save(f, array, allow_pickle=False))
            _atomic_save(meta_path, lambda f: f.write(json.dumps(meta).encode()))
            self._prune(name)
        except OSError:
            return

    def load_json(self, name: str, key: str) -> Any:
        """A cached JSON document, or None."""
        if self.folder is None:
            return None
        try:
            return json.loads((self.folder / f"{name}-{key}.json").read_text())
        except (OSError, ValueError):
            return None

    def save_json(self, name: str, key: str, obj: Any) -> None:
        if self.folder is None:
            return
        path = self.folder / f"{name}-{key}.json"
        try:
            _atomic_save(path, lambda f: f.write(json.dumps(obj).encode()))
            self._prune(name)
        except OSError:
            return

    def _prune(self, name: str) -> None:
        assert self.folder is not None
        # a writer killed mid-save (kill -9, out of memory) leaves its temporary copy, a whole
        # decoded split; a day old, nobody is still writing it
        cutoff = time.time() - STALE_AFTER_S
        for tmp in self.folder.glob(f".{name}-*.tmp"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
        entries: dict[str, float] = {}
        for path in self.folder.glob(f"{name}-*.json"):
            key = path.stem[len(name) + 1 :]
            if "-" not in key:
                entries[key] = path.stat().st_mtime
        for key in sorted(entries, key=entries.__getitem__, reverse=True)[KEEP_PER_NAME:]:
            for suffix in (".npy", ".json"):
                (self.folder / f"{name}-{key}{suffix}").unlink(missing_ok=True)
