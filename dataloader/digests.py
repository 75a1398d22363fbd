"""What a folder data set is made of: its files' names and contents, independent of when they
were written.

A folder's ``content_hash`` (the trainer's ``dataset_hash``, an evaluation's test data) is the
hash of its files' paths and the BLAKE2b digests of their bytes: the same files copied to
another machine, synced again (``aws s3 sync``, ``rsync`` without ``-t``) or checked out afresh
keep their hash, so evaluations made before and after still compare; a file rewritten with other
bytes changes it (as for git, one whose size and modification time were both restored is
trusted unchanged).

Reading every file's bytes costs one pass over the data, paid once: each digest is cached with
the file's size and modification time (``digests`` in the loader's cache), and a file whose size
and time are unchanged is not read again.
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from dataloader.cache import ArrayCache, make_key

CHUNK = 1 << 20


class Stat(Protocol):
    """A scanned file: its path relative to the data set, size and modification time."""

    rel: str
    size: int
    mtime_ns: int


def file_digest(path: Path) -> str:
    """BLAKE2b (128 bits) of the file's bytes; ``unreadable`` when it cannot be read (the loader
    reports such a file; the hash still covers its name)."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return "unreadable"
    return digest.hexdigest()


def content_hash(root: Path, files: Sequence[Stat], cache: ArrayCache) -> str:
    """SHA-256 of ``[[path, digest], ...]`` of ``files`` (in their order) under ``root``."""
    key = make_key("digests", str(root.resolve()))
    known = cache.load_json("digests", key)
    known = known if isinstance(known, dict) else {}
    pairs, changed = [], False
    for f in files:
        entry = known.get(f.rel)
        if isinstance(entry, list) and entry[:2] == [f.size, f.mtime_ns] and len(entry) == 3:
            digest = entry[2]
        else:
            digest = file_digest(root / f.rel)
            if digest != "unreadable":
                known[f.rel], changed = [f.size, f.mtime_ns, digest], True
        pairs.append([f.rel, digest])
    if changed:
        cache.save_json("digests", key, known)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()
