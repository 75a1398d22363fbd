"""Which file of a data folder a pseudonym names (``FILE_NAMES=pseudonyms``): for the data's
owner, who holds the folder and ``PSEUDONYM_KEY``, to find an image that a result names."""

import contextlib
from pathlib import Path

from common import InvalidInput, get_settings
from dataloader.errors import DataError
from dataloader.manifest import MANIFEST_NAME, read_manifest
from dataloader.pseudonyms import file_pseudonym
from dataloader.scan import class_dirs, class_entries, outside_classes, present_splits


def _candidates(root: Path):
    """Every name the loader can give a file of ``root`` (its scan: class folders, linked or not,
    what lies in them, kept or skipped, and files beside them), and the files the group manifest
    names, as the loader reads its rows (a pseudonym of a row that names no image)."""
    for split in present_splits(root):
        yield from (entry["file"] for entry in outside_classes(root, split))
        for folder in class_dirs(root, split):
            for rel, _, _ in class_entries(folder):
                yield f"{split}/{folder.name}/{rel}"
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
