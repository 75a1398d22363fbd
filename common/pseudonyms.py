"""Names that leave the data folder for results that many people read (MLflow artifacts, job
records, the dashboard): a patient's identifier never, a file's path unless ``FILE_NAMES`` allows.

Patients (a DICOM PatientID, a manifest's group) are named in shared results by a pseudonym,
``patient-<12 hex>``: an HMAC-SHA256 of the identifier under ``PSEUDONYM_KEY``, or under a key
each process draws when that is unset (pseudonyms then differ between runs). An unkeyed hash
would not do: a medical record number has few enough digits to be found by trying them all.

Files keep their relative path (``test/malignant/0042.png``), or with ``FILE_NAMES=pseudonyms``
their split and class folders and a keyed hash of the whole path in place of the rest
(``test/malignant/~3f9a2c1e07b4.png``): patient or study folders and names in file names stay in
the data folder, while a name stays the same for the same file in every run and service (the
dashboard pairs two evaluations' images by it). ``python -m dataloader locate`` maps back.
"""

import hashlib
import hmac
import re
import secrets

from common.redact import printable
from common.settings import get_settings

_PROCESS_KEY = secrets.token_bytes(32)
DIGITS = 12  # hex digits: 48 bits, no collision to expect among millions of files
PSEUDONYM_MARK = "~"
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")  # .png, .dcm, .jpeg: kept (what kind of file)


def _digest(text: str, key: bytes) -> str:
    raw = text.encode("utf-8", "surrogateescape")
    return hmac.new(key, raw, hashlib.sha256).hexdigest()[:DIGITS]


def _key() -> bytes | None:
    key = get_settings().pseudonym_key
    return key.get_secret_value().encode() if key is not None else None


def patient_pseudonym(identifier: str) -> str:
    """``patient-<12 hex>`` for a patient's identifier (a PatientID, a manifest group)."""
    return f"patient-{_digest(identifier, _key() or _PROCESS_KEY)}"


def file_pseudonym(relative: str, key: bytes) -> str:
    """The pseudonym of the file at ``relative`` (POSIX, relative to the data folder): its split
    and class folders, then ``~`` and a keyed hash of the whole path, then its suffix."""
    parts = relative.split("/")
    kept = parts[:2] if len(parts) > 2 else parts[:-1]  # a file directly in a split: the split
    suffix = _SUFFIX.search(parts[-1])
    name = f"{PSEUDONYM_MARK}{_digest(relative, key)}{suffix.group(0).lower() if suffix else ''}"
    return "/".join([*map(printable, kept), name])


def shown_file(relative: str) -> str:
    """How results name the file at ``relative``: the path itself (file names that are not
    UTF-8 with ``\\x`` escapes, ``printable``), or its pseudonym (``FILE_NAMES=pseudonyms``)."""
    if get_settings().file_names == "paths":
        return printable(relative)
    return file_pseudonym(relative, _key())
