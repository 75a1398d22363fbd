"""Names that leave the data folder for results that many people read (MLflow artifacts, job
records, the dashboard): a patient's identifier never, a file's path unless ``FILE_NAMES`` allows.

Patients (a DICOM PatientID, a manifest's group) are named in shared results by a pseudonym,
``patient-<12 hex>``: an HMAC-SHA256 of the identifier under ``PSEUDONYM_KEY``, or under a key
each process draws when that is unset (pseudonyms then differ between runs). An unkeyed hash
would not do: a medical record number has few enough digits to be found by trying them all.

Files keep their relative path (``test/malignant/0042.png``), or with ``FILE_NAMES=pseudonyms``
their split and class folders, a keyed hash of the whole path in place of the rest and their image
suffix (``test/malignant/~3f9a2c1e07b4.png``): patient or study folders and names in file names
stay in the data folder, while a name stays the same for the same file in every run and service
(the dashboard pairs two evaluations' images by it). ``python -m dataloader locate`` maps back.
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from common import get_settings, printable
from dataloader.images import IMAGE_SUFFIXES
from dataloader.scan import SPLITS

_PROCESS_KEY = secrets.token_bytes(32)
DIGITS = 12  # hex digits: 48 bits, no collision to expect among millions of files
PSEUDONYM_MARK = "~"


def _digest(text: str, key: bytes) -> str:
    raw = text.encode("utf-8", "surrogateescape")
    return hmac.new(key, raw, hashlib.sha256).hexdigest()[:DIGITS]


def _key() -> bytes | None:
    key = get_settings().pseudonym_key
    return key.get_secret_value().encode() if key is not None else None


def patient_pseudonym(identifier: str) -> str:
    """``patient-<12 hex>`` for a patient's identifier (a PatientID, a manifest group)."""
    return f"patient-{_digest(identifier, _key() or _PROCESS_KEY)}"


def file_pseudonym(relative: str, key: bytes, classes: Iterable[str] = ()) -> str:
    """The pseudonym of the file at ``relative`` (POSIX, relative to the data folder): its split
    folder and, when one of ``classes``, its class folder, then ``~`` and a keyed hash of the
    whole path, then its image suffix. Other folders (a patient's, a study's, a manifest row's
    misspelt path) and other endings stay in the hash."""
    parts = relative.split("/")
    kept = []
    if len(parts) > 1 and parts[0] in SPLITS:
        kept.append(parts[0])
        if len(parts) > 2 and parts[1] in set(classes):
            kept.append(parts[1])
    suffix = "." + parts[-1].rsplit(".", 1)[-1].lower() if "." in parts[-1] else ""
    suffix = suffix if suffix in IMAGE_SUFFIXES else ""
    return "/".join([*map(printable, kept), f"{PSEUDONYM_MARK}{_digest(relative, key)}{suffix}"])


def shown_file(relative: str, classes: Iterable[str] = ()) -> str:
    """How results name the file at ``relative`` of a data set of ``classes``: the path itself
    (file names that are not UTF-8 with ``\\x`` escapes, ``printable``), or its pseudonym
    (``FILE_NAMES=pseudonyms``)."""
    if get_settings().file_names == "paths":
        return printable(relative)
    return file_pseudonym(relative, _key(), classes)
