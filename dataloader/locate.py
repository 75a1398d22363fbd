"""Which file of a data folder a pseudonym names (``FILE_NAMES=pseudonyms``): for the data's
owner, who holds the folder and ``PSEUDONYM_KEY``, to find an image that a result names."""

import csv
import os
from pathlib import Path

from common import InvalidInput, file_pseudonym, get_settings
from dataloader.groups import MANIFEST_NAME


def _candidates(root: Path):
    """Every file under ``root`` as a POSIX path relative to it (the loader's own names), and the
    files the group manifest names (a pseudonym of a row that names no image)."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .cache: the loader's own
        prefix = Path(folder).relative_to(root).as_posix()
        for name in sorted(files):
            yield name if prefix == "." else f"{prefix}/{name}"
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            for row in csv.DictReader(f):
                if row.get("file"):
                    yield row["file"].strip()


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
        found = wanted.get(file_pseudonym(rel, secret))
        if found is not None and rel not in found:
            found.append(rel)
    return wanted
