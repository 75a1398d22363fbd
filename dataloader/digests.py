"""What a folder data set is made of: its files' names and contents, independent of when they
were written.

A folder's ``content_hash`` (the trainer's ``dataset_hash``, an evaluation's test data) is the
hash of its files' paths and the BLAKE2b digests of their bytes: the same files copied to
another machine, synced again (``aws s3 sync``, ``rsync`` without ``-t``) or checked out afresh
keep their hash, so evaluations made before and after still compare; a file rewritten with other
bytes changes it, also when its size and modification time were restored (``tar``, ``unzip``).

Reading every file's bytes costs one pass over the data, paid once: each digest is cached with
the file's size, modification and change times and inode (``digests`` in the loader's cache),
and a file whose four are unchanged is not read again. The digests also key the loader's caches
of headers and decoded images, so those follow the contents too.
"""

import hashlib
import json
import os
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

from dataloader.cache import ArrayCache

CHUNK = 1 << 20


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


def stat_signature(path: str | os.PathLike) -> list[int] | None:
    """What a file is judged unchanged by (a cached digest, a submission's data signature):
    size, modification and change times, inode; None when it cannot be read. A tool that
    restores modification times (tar, unzip) cannot restore the change time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def file_digests(root: Path, rels: Sequence[str], cache: ArrayCache) -> dict[str, str]:
    """The digest of each file ``rels`` under ``root`` (``file_digest``), read only for files
    whose signature changed since their digest was cached."""
    # One document per data set, whatever the decoding version (digests do not depend on it).
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
    known = _cached(cache, key)
    found, fresh = {}, {}
    for rel in rels:
        signature = stat_signature(root / rel)
        entry = known.get(rel)
        if signature is not None and isinstance(entry, list) and entry[:-1] == signature:
            found[rel] = entry[-1]
        else:
            found[rel] = file_digest(root / rel)
            if signature is not None and found[rel] != "unreadable":
                fresh[rel] = [*signature, found[rel]]
    if fresh:  # merged into what another loader (the trainer's, an evaluator's) saved meanwhile,
        # less the files that are gone (renamed or deleted), so the document does not grow
        merged = {**_cached(cache, key), **fresh}
        kept = {r: e for r, e in merged.items() if r in found or (root / r).is_file()}
        cache.save_json("digests", key, kept)
    return found


def content_hash(digests: Mapping[str, str]) -> str:
    """SHA-256 of the sorted ``[name, digest]`` pairs of ``file_digests`` (names in Unicode
    NFC: a copy from macOS, which writes NFD, keeps the hash)."""
    pairs = sorted([unicodedata.normalize("NFC", rel), d] for rel, d in digests.items())
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def _cached(cache: ArrayCache, key: str) -> dict:
    known = cache.load_json("digests", key)
    return known if isinstance(known, dict) else {}
