"""The group manifest: ``groups.csv`` in a data folder, columns ``file,group`` (``file`` relative
to the data folder as ``ImageSet.files`` names it), read strictly: UTF-8 only, every row whole,
one group a file (``dataloader.groups`` gives the images their groups from it)."""

import codecs
import csv
import io
import posixpath
import re
import shlex
import unicodedata
from pathlib import Path

from dataloader.errors import DataError

MANIFEST_NAME = "groups.csv"
MAX_LISTED = 5
FILE_HINT = "file relative to the data folder, with /, e.g. train/benign/0001.png"
_ABSOLUTE = re.compile(r"^(/|[A-Za-z]:/)")  # POSIX, or Windows after \ became /


def nfc(name: str) -> str:
    """``name`` in Unicode NFC: macOS and some zip tools write "bénin" decomposed (NFD), which
    looks the same; the manifest and the file names are compared in one form."""
    return unicodedata.normalize("NFC", name)


def _relative(file: str, root: Path) -> str | None:
    """``file`` as a manifest names an image: relative to ``root``, with ``/``, in NFC. Windows
    separators become ``/``; an absolute path inside ``root`` becomes its relative path; None for
    an absolute path elsewhere."""
    name = nfc(file.replace("\\", "/"))
    if not _ABSOLUTE.match(name):
        return posixpath.normpath(name)
    for base in (root.absolute(), root.resolve()):
        try:
            return Path(posixpath.normpath(name)).relative_to(nfc(str(base))).as_posix()
        except ValueError:
            pass
    return None


def _convert(path: Path, encoding: str) -> str:
    """How to make a manifest written in ``encoding`` UTF-8."""
    file, converted = shlex.quote(str(path)), shlex.quote(f"{path}.utf8")
    return (
        f"save it as 'CSV UTF-8 (Comma delimited)' in Excel, or convert it: iconv -f {encoding} "
        f"-t utf-8 {file} > {converted} && mv {converted} {file}"
    )


def _manifest_text(path: Path) -> str:
    """The text of a manifest, which must be UTF-8 (a byte-order mark is allowed). Another
    encoding is refused, not guessed: a file or patient name decoded in the wrong code page
    would match another name, or none.

    Raises:
        OSError: The file cannot be read.
        DataError: The bytes are not UTF-8, naming where the first wrong byte is.
    """
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(
            f"the group manifest {path} is UTF-16 text (Excel's 'Unicode Text'), not a UTF-8 "
            f"CSV; {_convert(path, 'utf-16')}"
        )
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        line = data.count(b"\n", 0, at) + 1
        raise DataError(
            f"the group manifest {path} is not UTF-8: the byte 0x{data[at]:02x} at offset {at} "
            f"(line {line}) is not valid UTF-8; a spreadsheet saved it in another encoding "
            "(Excel's 'CSV (Comma delimited)' writes the Windows code page, such as cp1252, where "
            "ü or é is one byte). The encoding is not guessed, as a patient or file name read in "
            f"the wrong one would match no image or another patient: {_convert(path, 'cp1252')}"
        ) from None


def _separator_hint(text: str) -> str:
    """Why a row or header may hold one column: a spreadsheet in a locale whose decimal comma
    makes it separate by ``;`` (or a tab); empty when ``text`` has neither."""
    for mark, name in ((";", "semicolons"), ("\t", "tabs")):
        if mark in text:
            return f"; it is separated by {name}: save it with commas (CSV UTF-8)"
    return ""


def read_manifest(path: Path, root: Path) -> dict[str, str]:
    """``file -> group`` from a CSV with a header row naming ``file`` and ``group``; ``file`` as
    ``ImageSet.files`` names it, in Unicode NFC (see ``_relative``).

    Raises:
        DataError: Unreadable file, not UTF-8 (``_manifest_text``), missing columns, an empty
            group, an absolute path outside ``root`` or a file listed twice with different groups.
    """
    try:
        reader = csv.DictReader(io.StringIO(_manifest_text(path), newline=""))
        if not reader.fieldnames or not {"file", "group"} <= set(reader.fieldnames):
            found = ",".join(reader.fieldnames or []) or "no header"
            raise DataError(
                f"{path} must be a CSV with a header row 'file,group' (found: {found}"
                f"{_separator_hint(found)}); one row per image, "
                "file relative to the data folder, e.g. train/benign/0001.png,patient-17"
            )
        groups: dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            file, group = (row["file"] or "").strip(), (row["group"] or "").strip()
            if not file or not group:
                raise DataError(
                    f"{path} line {line}: file and group must both be given"
                    f"{_separator_hint(file) if not group else ''}"
                )
            relative = _relative(file, root)
            if relative is None:
                raise DataError(
                    f"{path} line {line}: {file} is an absolute path outside the data folder "
                    f"{root}; give the {FILE_HINT}"
                )
            file = relative
            if groups.setdefault(file, group) != group:
                raise DataError(
                    f"{path} line {line}: {file} is listed with two groups "
                    f"({groups[file]!r} and {group!r}); give each image one group"
                )
    except (OSError, csv.Error) as exc:
        raise DataError(f"cannot read the group manifest {path}: {exc}") from exc
    return groups


def unmatched_rows(
    manifest: dict[str, str], scanned: set[str], root: Path, splits: list[str]
) -> list[str]:
    """The files of ``manifest`` that name no image, in row order: under a loaded split (one of
    ``splits``) none of the files ``scanned`` there (read or skipped); elsewhere no file on disk
    (in either Unicode form)."""
    scanned = {nfc(f) for f in scanned}
    return [
        f
        for f in manifest
        if f not in scanned
        and (
            f.split("/")[0] in splits
            or not any((root / unicodedata.normalize(form, f)).is_file() for form in ("NFC", "NFD"))
        )
    ]


def describe_unmatched(unmatched: list[str], count: int | None = None) -> str:
    """``N row(s) of it match no image (first: ...)`` and what the rows must name; ``count``:
    how many there are when ``unmatched`` holds only the first ones."""
    return (
        f"{len(unmatched) if count is None else count} row(s) of it match no image (first: "
        f"{', '.join(unmatched[:MAX_LISTED])}); give each image a row 'file,group', {FILE_HINT}"
    )
