"""Which file of a data folder a pseudonym names (``FILE_NAMES=pseudonyms``): for the data's
owner, who holds the folder and ``PSEUDONYM_KEY``, to find an image that a result names."""

import contextlib
import os
from pathlib import Path

from common import InvalidInput, get_settings
from dataloader.errors import DataError
from dataloader.groups import MANIFEST_NAME, read_manifest
from dataloader.pseudonyms import file_pseudonym


def _walk(folder: Path, prefix: str):
    """The files under ``folder`` as ``prefix/...`` paths; links inside it are not followed (as
    the loader does not follow them)."""
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .cache: the loader's own
        inner = Path(here).relative_to(folder).as_posix()
        base = prefix if inner == "." else f"{prefix}/{inner}"
        yield from (f"{base}/{name}" for name in sorted(files))


def _candidates(root: Path):
    """Every file of the data folder as a POSIX path relative to it (the loader's own names;
    linked split and class folders followed, as the loader follows them), and the files the
    group manifest names, as the loader reads its rows (a pseudonym of a row that names no
    image)."""
    for split in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for entry in sorted(split.iterdir()):
            if entry.is_dir():  # a class folder (a link to one too)
                yield from _walk(entry, f"{split.name}/{entry.name}")
            elif entry.is_file():
                yield f"{split.name}/{entry.name}"
    if (root / MANIFEST_NAME).is_file():
        # a manifest the loader refuses named nothing in any result
        with contextlib.suppress(DataError):
            yield from read_manifest(root / MANIFEST_NAME, root)


def locate(root: Path, pseudonyms: list[str]) -> dict[str, list[str]]:
    """``pseudonym -> [relative path, ...]`` for each of ``pseudonyms`` (``[]``: no file of
    ``root`` has it, e.g. the file was removed or another key made it).

    Raises:
        InvalidInput: ``PSEUDONYM_KEY`` is unset, or ``root`` is not a folder.
    """
    key = get_settings().pseudonym_key
    if key is None:
        raise InvalidInput(
            "set PSEUDONYM_KEY to the key the services ran with: a pseudonym is a keyed hash"
        )
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a data folder")
    wanted = {p.strip(): [] for p in pseudonyms}
    secret = key.get_secret_value().encode()
    for rel in _candidates(root):
        # its second folder is kept when it was a class of the data set, else hashed: both
        parts = rel.split("/")
        for classes in ((parts[1],) if len(parts) > 2 else (), ()):
            found = wanted.get(file_pseudonym(rel, secret, classes))
            if found is not None and rel not in found:
                found.append(rel)
    return wanted
