"""Scanning an image folder: its split and class folders and the candidate image files in them
(names; empty files are left out), and the files left out by name or place, before any is read."""

import errno
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common import printable
from dataloader.errors import DataError
from dataloader.images import IMAGE_SUFFIXES, NOT_PART_10, kind_of

SPLITS = ("train", "val", "test")
SUFFIXES = ", ".join(IMAGE_SUFFIXES)
NOT_SUPPORTED = (
    f"not a supported image type (named neither {SUFFIXES} nor a PNG, JPEG or DICOM file by its "
    "first bytes)"
)


@dataclass(frozen=True)
class ScannedFile:
    """A candidate image file found by ``scan``, before it is read: ``rel`` its path relative to
    the data set's root (``train/<class>/name.png``), ``label`` its class's index (class folders
    in sorted order). Its contents key the caches (``dataloader.digests``)."""

    rel: str
    label: int


def layout(root: Path) -> str:
    """The folder layout expected under ``root``, for messages that say what was missing."""
    return f"{root}/train/<class>/*.png|.jpg|.dcm and {root}/test/<class>/... (val/ optional)"


def present_splits(root: Path) -> list[str]:
    """The split folders that exist under ``root``, in train/val/test order."""
    return [s for s in SPLITS if (root / s).is_dir()]


NOT_IN_A_CLASS = (
    "not inside a class folder, so not read (move it into a class folder of its split to use it)"
)


# Folders that storage systems and archivers add beside a user's own (Synology's thumbnails in
# @eaDir, macOS's resource forks in __MACOSX, recycle bins, fsck's lost+found): never a class,
# never a patient's images. Names compare case-insensitively.
SYSTEM_FOLDERS = frozenset(
    n.casefold()
    for n in ("@eaDir", "__MACOSX", "#recycle", "#snapshot", "$RECYCLE.BIN",
              "System Volume Information", "lost+found")
)  # fmt: skip
SYSTEM_FOLDER = (
    "a folder that a storage system or archiver adds (NAS thumbnails, macOS resource forks, a "
    "recycle bin), not images of a class: not read"
)
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})
"""Files Windows' Explorer leaves in folders it shows: passed over without a word, as the
hidden ``.DS_Store`` and ``._*`` files of macOS are (they are no image anyone put there)."""
HIDDEN_FOLDER = (
    "a hidden folder (its name starts with '.'), not a class: rename it without the dot to use "
    "its images"
)
TOOL_FOLDERS = frozenset(
    n.casefold()
    for n in (".ipynb_checkpoints", ".git", ".svn", ".cache", ".Trashes", ".Spotlight-V100",
              ".fseventsd", ".TemporaryItems", ".DocumentRevisions-V100")
)  # fmt: skip
"""Hidden folders that tools and file systems keep (Jupyter's checkpoints, version control,
macOS volumes): passed over without a word, as no class was ever named so."""


def _system(name: str) -> bool:
    return name.casefold() in SYSTEM_FOLDERS


def _system_file(name: str) -> bool:
    return name.casefold() in SYSTEM_FILES


def outside_classes(root: Path, split: str) -> list[dict]:
    """The files directly in a split folder, beside its class folders, its system folders
    (``SYSTEM_FOLDERS``) and its hidden folders: not read, so listed as skipped (an image put
    there by mistake, or a class folder named ``.x``, would otherwise vanish). Hidden files and
    ``SYSTEM_FILES`` are not."""
    skipped = []
    for p in sorted((root / split).iterdir()):
        if p.is_dir() and p.name.startswith("."):
            if p.name.casefold() in TOOL_FOLDERS:
                continue
            skipped.append({"file": f"{split}/{p.name}/", "reason": HIDDEN_FOLDER})
        elif p.is_dir() and _system(p.name):
            skipped.append({"file": f"{split}/{p.name}/", "reason": SYSTEM_FOLDER})
        elif not p.is_dir() and not p.name.startswith(".") and not _system_file(p.name):
            reason = CLASS_LINK_LOOP if _loops(p) else NOT_IN_A_CLASS
            skipped.append({"file": f"{split}/{p.name}", "reason": reason})
    return skipped


CLASS_LINK_LOOP = (
    "a symlink loop (the link leads back to itself through other links; remove it, or put the "
    "class folder it was meant to be in its place)"
)


def _loops(path: Path) -> bool:
    """Whether ``path`` is a link that leads back to itself (``is_dir`` is False for it)."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def class_dirs(root: Path, split: str) -> list[Path]:
    """The class folders of ``root/split`` in sorted order (their position is the label);
    hidden folders and ``SYSTEM_FOLDERS`` are not classes.

    Raises:
        DataError: The split folder holds no class folder, or one whose name is not UTF-8.
    """
    folder = root / split
    dirs = sorted(
        p for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not _system(p.name)
    )  # fmt: skip
    if not dirs:
        raise DataError(f"{folder} has no class folders; expected {layout(root)}")
    for d in dirs:
        _check_class_name(d)
    return dirs


def _check_class_name(folder: Path) -> None:
    """``DataError`` for a class folder whose name is not UTF-8 (a zip made on Windows, unpacked
    here): the name is the class that the model, its metrics and every answer carry."""
    try:
        folder.name.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(
            f"the class folder {printable(str(folder))} has a name that is not UTF-8 (an "
            "archive made on another system, such as a Windows zip, spells accents so); the "
            "folder's name is the class the model reports: rename it in every split, or unpack "
            "the archive again naming its encoding (unzip -O CP437, or the code page it was "
            "made in)"
        ) from None


# Other spellings of a split folder that people use; any letter case of a split's name too.
_SPLIT_SPELLINGS = {"training": "train", "validation": "val", "valid": "val", "testing": "test"}


def check_split_names(path: Path) -> None:
    """``DataError`` naming the folders of ``path`` that look like a split but would not be read
    (``Test/``, ``validation/``), with the names to give them."""
    found = {}
    for entry in sorted(p.name for p in path.iterdir() if p.is_dir()):
        split = _SPLIT_SPELLINGS.get(entry.lower(), entry.lower())
        if split in SPLITS and entry != split:
            found[entry] = f"{entry}/ → {split}/"
    if found:
        raise DataError(
            f"{path} holds {', '.join(f'{m}/' for m in found)}, which is not read: only "
            f"train/, val/ and test/ are; rename it ({', '.join(found.values())}) so "
            "that its images are not silently left out"
        )


def _named_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _image_by_content(entry: os.DirEntry) -> bool:
    """Whether a file named otherwise is a PNG, JPEG or DICOM file by its first bytes (PACS
    exports name DICOM files ``IM0001`` or by their UID). One short read, only for such names
    and regular files (a FIFO would block); a file that cannot be opened counts, so that the
    scan reports why it cannot be read, and so does an empty one (a failed transfer)."""
    try:
        return entry.is_file() and (entry.stat().st_size == 0 or kind_of(entry.path) is not None)
    except OSError:
        return True


# The first element of a DICOM data set written without the Part 10 header (preamble, 'DICM'):
# a tag of group 0002 (file meta) or 0008 (identification), little endian, then an explicit VR
# or an implicit VR's 4-byte length.
_DICOM_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN "
    b"UR US UT UV".split()
)


def _headerless_dicom(entry: os.DirEntry) -> bool:
    """Whether a file that is no image by its first bytes starts as a DICOM data set does (a
    PACS or scanner export without the Part 10 header), to say how to export it. Regular files
    only (a FIFO would block)."""
    try:
        if not entry.is_file():
            return False
        with open(entry.path, "rb") as fp:
            head = fp.read(8)
    except OSError:
        return False
    if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    return head[4:6] in _DICOM_VRS or int.from_bytes(head[4:8], "little") < 1 << 16


SYMLINK_LOOP = (
    "a symlink loop (the link leads back to itself through other links; remove it or point it "
    "at an image file)"
)


def _linked_dir(entry: os.DirEntry) -> bool:
    """Whether a link leads to a folder; a link that cannot be followed (a loop, a link to
    nothing) does not, and the scan then says why it cannot be read."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def class_entries(folder: Path) -> Iterator[tuple[str, os.DirEntry | None, str | None]]:
    """Every entry below a class folder, sorted, as ``(path relative to folder, entry, why it is
    left out or None)``: images may sit in subfolders (one per patient or study, as exports
    often arrange them), as torchvision's ``ImageFolder`` reads them. Hidden names are passed
    over; a linked folder is not followed (a link to a parent would never end); a system folder
    (``SYSTEM_FOLDERS``: NAS thumbnails) is left out."""
    with os.scandir(folder) as scan:  # DirEntry caches the type: no extra stat per file
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith(".") or (_system_file(entry.name) and entry.is_file()):
            continue
        if entry.is_dir(follow_symlinks=False) and _system(entry.name):
            yield f"{entry.name}/", None, SYSTEM_FOLDER
        elif entry.is_dir(follow_symlinks=False):
            for rel, inner, reason in class_entries(Path(entry.path)):
                yield f"{entry.name}/{rel}", inner, reason
        elif entry.is_symlink() and _linked_dir(entry):
            yield entry.name, None, "a linked folder (not followed; copy or move its images here)"
        elif not _named_image(entry.name) and not _image_by_content(entry):
            yield entry.name, None, NOT_PART_10 if _headerless_dicom(entry) else NOT_SUPPORTED
        else:
            yield entry.name, entry, None


def _scan_class(root: Path, folder: Path, label: int, skipped: list[dict]) -> list[ScannedFile]:
    """The candidate files of one class folder; those left out are added to ``skipped``.

    Raises:
        DataError: No file of the folder is a candidate: it is empty, or none of its files is
            usable (the first is named with why).
    """
    files, left_out = [], []
    prefix = folder.relative_to(root).as_posix()
    for name, entry, reason in class_entries(folder):
        rel = f"{prefix}/{name}"
        if entry is None:
            left_out.append({"file": rel, "reason": reason})
            continue
        try:
            st = entry.stat()
        except OSError as exc:  # a link to nothing or a loop, or a file removed while scanning
            why = f"cannot be read ({exc.strerror or exc})"
            if exc.errno == errno.ELOOP:
                why = SYMLINK_LOOP
            left_out.append({"file": rel, "reason": why})
            continue
        if st.st_size == 0:
            left_out.append({"file": rel, "reason": "empty file (0 bytes)"})
        else:
            files.append(ScannedFile(rel, label))
    skipped += left_out
    if not files and left_out:
        _none_usable(folder, left_out)
    if not files:
        raise DataError(
            f"{folder} has no images; put {SUFFIXES} files in it (or in subfolders of it) or "
            "remove the empty class folder"
        )
    return files


def _none_usable(folder: Path, left_out: list[dict]) -> None:
    """``DataError`` for a class folder whose files were all left out by the scan: how many,
    and the first with why (as ``folder.load_folder`` says of files that fail to decode)."""
    from dataloader.pseudonyms import shown_file  # it imports this module

    first = left_out[0]
    what = f"{shown_file(first['file'], [folder.name])}: {first['reason']}"
    several = len(left_out) > 1
    if first["reason"] == NOT_PART_10:  # which ends in how to export it
        fix = "export them as DICOM Part 10 files" if several else "do so"
    else:
        fix = f"replace {'them' if several else 'it'} with valid {SUFFIXES} images"
    found = (
        f"none of the {len(left_out)} files in {folder} could be used (first: {what})"
        if several
        else f"the one file in {folder} could not be used ({what})"
    )
    raise DataError(f"{found}; {fix}, or remove the class folder")


def class_key(name: str) -> str:
    """What a class folder's name is compared by: its Unicode NFC form (a copy made on macOS
    spells "bénin" decomposed, NFD), case-folded (``Benign`` and ``benign`` cannot both exist on
    macOS or Windows; side by side they are one class exported twice), without blanks before or
    after it (``benign `` looks like ``benign`` in every listing)."""
    return unicodedata.normalize("NFC", name.strip()).casefold()


def _spelt_apart(first: str, second: str) -> str:
    """How two folder names of one ``class_key`` differ, in words."""
    ways = []
    bare = first.strip(), second.strip()
    if bare != (first, second):
        ways.append("with a blank before or after it that listings do not show")
    if unicodedata.normalize("NFC", bare[0]) != unicodedata.normalize("NFC", bare[1]):
        ways.append(
            "in two letter cases (they cannot both exist on macOS or Windows: one class "
            "exported twice)"
        )
    elif bare[0] != bare[1]:
        ways.append("written in two Unicode forms (a copy made on macOS writes accents apart, NFD)")
    return ", and ".join(ways)


def _one_spelling_each(folders: list[Path]) -> None:
    """Refuse two class folders of one split whose names are one name spelt twice (``class_key``):
    in two Unicode forms (a merge of a macOS copy, NFD: ``e`` + a combining accent, with
    another, NFC: ``é``), in two letter cases (``Benign`` and ``benign``) or with a blank after
    it (``benign ``). Each would be a class of its own, the images of one name split between two
    labels."""
    seen: dict[str, str] = {}
    for folder in folders:
        key = class_key(folder.name)
        if key in seen:
            first = seen[key]
            raise DataError(
                f"{folder.parent} holds the class folders {first!r} and {folder.name!r}, one "
                f"name {_spelt_apart(first, folder.name)}: merge them (move the images of one "
                "into the other and remove it) or rename one if they are different classes"
            )
        seen[key] = folder.name


def scan(
    root: Path, splits: list[str], class_names: list[str] | None
) -> tuple[list[str], dict[str, list[ScannedFile]], list[dict]]:
    """Class names, the candidate files of each split, and the files skipped by name or place."""
    dirs = {s: class_dirs(root, s) for s in splits}
    if class_names is None:
        # Labels follow train's classes even when only test is loaded (a class may lack tests).
        if "train" not in dirs and (root / "train").is_dir():
            try:
                dirs_train = class_dirs(root, "train")
            except DataError:
                dirs_train = []
            class_names = sorted({d.name for d in dirs_train}) or None
        if class_names is None:
            source = ["train"] if "train" in dirs else splits
            class_names = sorted({d.name for s in source for d in dirs[s]})
    for split in splits:
        _one_spelling_each(dirs[split])
    # Names compare by ``class_key`` across splits too: test/benign is train's Benign, and a
    # copy made on macOS spells "bénin" in NFD, which looks the same (the first spelling names
    # the class).
    spellings: dict[str, str] = {}
    for name in class_names:
        spellings.setdefault(class_key(name), name)
    class_names = list(spellings.values())
    skipped = [entry for s in splits for entry in outside_classes(root, s)]
    files: dict[str, list[ScannedFile]] = {}
    labels = {class_key(name): i for i, name in enumerate(class_names)}
    for split in splits:
        files[split] = []
        for folder in dirs[split]:
            label = labels.get(class_key(folder.name))
            if label is None:
                known = ", ".join(repr(name) for name in class_names)
                raise DataError(
                    f"{folder.parent}/{folder.name!r} is a class that the training classes "
                    f"({known}) lack; every split must use the class folder names of train/"
                )
            files[split] += _scan_class(root, folder, label, skipped)
    return class_names, files, skipped
