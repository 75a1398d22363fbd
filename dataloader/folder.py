"""Image folders: ``<root>/{train,val,test}/<class>/<image files>`` (PNG, JPEG, DICOM).

Loading scans the file list (names, sizes, mtimes), reads each new file's header once (cached as
the "index"), and decodes a split only when its cache entry is missing.
"""

import errno
import hashlib
import json
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median_low

import numpy as np

from dataloader import digests
from dataloader.cache import ArrayCache, make_key
from dataloader.errors import DataError
from dataloader.groups import MANIFEST_NAME, assign, read_manifest, unmatched_rows
from dataloader.images import IMAGE_SUFFIXES, any_colour, kind_of, read_header, read_pixels
from dataloader.imageset import ImageSet, Loaded, native_fit
from mlpipeline_model import ImageDecodeError, conform, misfit

SPLITS = ("train", "val", "test")
DOES_NOT_FIT = "does not fit"  # the reason of an image skipped by ``misfit``
SUFFIXES = ", ".join(IMAGE_SUFFIXES)
NOT_SUPPORTED = (
    f"not a supported image type (named neither {SUFFIXES} nor a PNG, JPEG or DICOM file by its "
    "first bytes)"
)


@dataclass(frozen=True)
class _File:
    rel: str
    label: int
    size: int
    mtime_ns: int


def layout(root: Path) -> str:
    return f"{root}/train/<class>/*.png|.jpg|.dcm and {root}/test/<class>/... (val/ optional)"


def _reason(exc: Exception) -> str:
    """Why a file is skipped: our decoders' own words, or the library's error and its type."""
    if isinstance(exc, ImageDecodeError):  # written for the user: no class name in front
        return str(exc)[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def present_splits(root: Path) -> list[str]:
    """The split folders that exist under ``root``, in train/val/test order."""
    return [s for s in SPLITS if (root / s).is_dir()]


NOT_IN_A_CLASS = (
    "not inside a class folder, so not read (move it into a class folder of its split to use it)"
)


def _outside_classes(root: Path, split: str) -> list[dict]:
    """The files directly in a split folder, beside its class folders: not read, so listed as
    skipped (an image put there by mistake would otherwise vanish). Hidden names are not."""
    return [
        {"file": f"{split}/{p.name}", "reason": NOT_IN_A_CLASS}
        for p in sorted((root / split).iterdir())
        if not p.name.startswith(".") and not p.is_dir()
    ]


def _class_dirs(root: Path, split: str) -> list[Path]:
    folder = root / split
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DataError(f"{folder} has no class folders; expected {layout(root)}")
    return dirs


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
    over; a linked folder is not followed (a link to a parent would never end)."""
    with os.scandir(folder) as scan:  # DirEntry caches the type: no extra stat per file
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            for rel, inner, reason in class_entries(Path(entry.path)):
                yield f"{entry.name}/{rel}", inner, reason
        elif entry.is_symlink() and _linked_dir(entry):
            yield entry.name, None, "a linked folder (not followed; copy or move its images here)"
        elif not _named_image(entry.name) and not _image_by_content(entry):
            yield entry.name, None, NOT_SUPPORTED
        else:
            yield entry.name, entry, None


def _scan_class(root: Path, folder: Path, label: int, skipped: list[dict]) -> list[_File]:
    files = []
    prefix = folder.relative_to(root).as_posix()
    for name, entry, reason in class_entries(folder):
        rel = f"{prefix}/{name}"
        if entry is None:
            skipped.append({"file": rel, "reason": reason})
            continue
        try:
            st = entry.stat()
        except OSError as exc:  # a link to nothing or a loop, or a file removed while scanning
            why = f"cannot be read ({exc.strerror or exc})"
            if exc.errno == errno.ELOOP:
                why = SYMLINK_LOOP
            skipped.append({"file": rel, "reason": why})
            continue
        if st.st_size == 0:
            skipped.append({"file": rel, "reason": "empty file (0 bytes)"})
        else:
            files.append(_File(rel, label, st.st_size, st.st_mtime_ns))
    if not files:
        raise DataError(
            f"{folder} has no images; put {SUFFIXES} files in it (or in subfolders of it) or "
            "remove the empty class folder"
        )
    return files


def _scan(
    root: Path, splits: list[str], class_names: list[str] | None
) -> tuple[list[str], dict[str, list[_File]], list[dict]]:
    """Class names, the candidate files of each split, and the files skipped by name or place."""
    dirs = {s: _class_dirs(root, s) for s in splits}
    if class_names is None:
        # Labels follow train's classes even when only test is loaded (a class may lack tests).
        if "train" not in dirs and (root / "train").is_dir():
            try:
                dirs_train = _class_dirs(root, "train")
            except DataError:
                dirs_train = []
            class_names = sorted({d.name for d in dirs_train}) or None
        if class_names is None:
            source = ["train"] if "train" in dirs else splits
            class_names = sorted({d.name for s in source for d in dirs[s]})
    skipped = [entry for s in splits for entry in _outside_classes(root, s)]
    files: dict[str, list[_File]] = {}
    # Names compare in Unicode NFC: a copy made on macOS spells "bénin" in NFD, which looks the
    # same and would otherwise be another class.
    labels = {unicodedata.normalize("NFC", name): i for i, name in enumerate(class_names)}
    for split in splits:
        files[split] = []
        for folder in dirs[split]:
            label = labels.get(unicodedata.normalize("NFC", folder.name))
            if label is None:
                known = ", ".join(repr(name) for name in class_names)
                raise DataError(
                    f"{folder.parent}/{folder.name!r} is a class that the training classes "
                    f"({known}) lack; every split must use the class folder names of train/"
                )
            files[split] += _scan_class(root, folder, label, skipped)
    return class_names, files, skipped


def _index(root: Path, files: list[_File], cache: ArrayCache, key: str) -> dict[str, list | str]:
    """Relative path → ``[height, width, is_colour, group]`` or why the header is unreadable."""
    index = cache.load_json("index", key)
    if isinstance(index, dict) and all(f.rel in index for f in files):
        return index
    index = {}
    for f in files:
        try:
            index[f.rel] = list(read_header(root / f.rel))
        except Exception as exc:  # any decoder error means "skip this file", never a crash
            index[f.rel] = _reason(exc)
    cache.save_json("index", key, index)
    return index


def _channels(root: Path, readable: list[_File], index: dict, cache: ArrayCache, key: str) -> int:
    """3 when a file stored as colour shows colour (``any_colour``: grey scans stored as RGB,
    JPEG exports, do not make a data set colour), else 1; remembered with the file list."""
    colour = cache.load_json("colour", key)
    if not isinstance(colour, bool):
        colour = any_colour([root / f.rel for f in readable if index[f.rel][2]])
        cache.save_json("colour", key, colour)
    return 3 if colour else 1


def _decode(
    root: Path, files: list[_File], size: tuple[int, int], channels: int
) -> tuple[np.ndarray, list[_File], list[dict]]:
    images = np.empty((len(files), size[0], size[1], channels), dtype=np.uint8)
    kept: list[_File] = []
    skipped: list[dict] = []
    for f in files:
        try:
            images[len(kept)] = conform(read_pixels(root / f.rel), size, channels)
        except Exception as exc:  # a corrupt file is skipped and reported, never a crash
            skipped.append({"file": f.rel, "reason": f"cannot decode: {_reason(exc)}"})
        else:
            kept.append(f)
    return images[: len(kept)], kept, skipped


def _check_classes(root: Path, split: str, files: list[_File], kept: set[str], skipped: list):
    """Every class folder must keep at least one readable image."""
    by_label: dict[int, list[_File]] = {}
    for f in files:
        by_label.setdefault(f.label, []).append(f)
    for group in by_label.values():
        if not any(f.rel in kept for f in group):
            folder = root / Path(group[0].rel).parent
            reasons = [s["reason"] for s in skipped if s["file"] == group[0].rel]
            reason = reasons[0] if reasons else "unreadable"
            fix = (
                "use images closer to the size and shape the others are resized to, or train "
                "with another --image-size"
                if reason.startswith(DOES_NOT_FIT)
                else f"replace them with valid {SUFFIXES} images"
            )
            raise DataError(
                f"none of the {len(group)} files in {folder} could be used "
                f"(first: {Path(group[0].rel).name}: {reason}); {fix}"
            )


def _typical_size(
    index: dict[str, list | str], files: dict[str, list[_File]], readable: list[_File]
) -> tuple[int, int]:
    """The median height and the median width (the lower middle value, so a size that occurs) of
    the readable training images (of all loaded images without train): the size most of them
    share, or a middle one where photographs all differ. Not the first file's: one odd file
    sorting first (a scout view, a screenshot) would otherwise set every image's shape."""
    pool = [f for f in files.get("train", []) if isinstance(index[f.rel], list)] or readable
    return (
        int(median_low(int(index[f.rel][0]) for f in pool)),
        int(median_low(int(index[f.rel][1]) for f in pool)),
    )


def load_folder(
    root: Path,
    splits: list[str],
    image_size: tuple[int, int] | None,
    channels: int | None,
    class_names: list[str] | None,
    cache_dir: Path | None,
    groups_file: Path | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
) -> Loaded:
    """Load ``splits`` (each must exist under ``root``) through the cache.

    Groups come from ``groups_file`` (default ``root/groups.csv`` when it exists), else from the
    DICOM PatientIDs (see ``dataloader.groups``).
    """
    if groups_file is None and (root / MANIFEST_NAME).is_file():
        groups_file = root / MANIFEST_NAME
    manifest = read_manifest(groups_file, root) if groups_file is not None else None
    for split in splits:
        if not (root / split).is_dir():
            raise DataError(
                f"{root / split} is missing; expected {layout(root)}, or load without {split!r}"
            )
    class_names, files, skipped = _scan(root, splits, class_names)
    all_files = [f for s in splits for f in files[s]]
    unmatched: list[str] = []
    if manifest is not None:
        scanned = {f.rel for f in all_files} | {s["file"] for s in skipped}
        unmatched = unmatched_rows(manifest, scanned, root, splits)
    # The cache's keys: names, sizes and times (a stat each, no read); the data's identity:
    # names and contents (``dataloader.digests``).
    file_list = json.dumps([[f.rel, f.size, f.mtime_ns] for f in all_files])
    listing = hashlib.sha256(file_list.encode()).hexdigest()
    cache = ArrayCache(cache_dir or root / ".cache", str(root.resolve()))
    content_hash = digests.content_hash(root, all_files, cache)
    index = _index(root, all_files, cache, make_key("index", listing))
    readable = [f for f in all_files if isinstance(index[f.rel], list)]
    skipped += [
        {"file": f.rel, "reason": f"unreadable header: {index[f.rel]}"}
        for f in all_files
        if not isinstance(index[f.rel], list)
    ]
    if not readable:
        raise DataError(f"none of the image files under {root} could be read; {layout(root)}")
    if image_size is None:
        image_size = native_fit(_typical_size(index, files, readable), min_size, max_size)
    if channels is None:
        channels = _channels(root, readable, index, cache, make_key("colour", listing))

    header_ids = {f.rel: index[f.rel][3] for f in readable if len(index[f.rel]) > 3}
    sets: dict[str, ImageSet] = {}
    for split in splits:
        candidates = []
        for f in files[split]:
            if not isinstance(index[f.rel], list):
                continue
            # A thumbnail or a strip (refused when served) is skipped from its header's size.
            if why := misfit(tuple(index[f.rel][:2]), image_size):
                skipped.append({"file": f.rel, "reason": f"{DOES_NOT_FIT}: {why}"})
            else:
                candidates.append(f)
        split_list = [[f.rel, f.label, f.size, f.mtime_ns] for f in candidates]
        key = make_key(split_list, list(image_size), channels)
        hit = cache.load(split, key)
        if hit is not None:
            images, meta = hit
            kept_rels, split_skipped = set(meta["files"]), meta["skipped"]
            kept = [f for f in candidates if f.rel in kept_rels]
        else:
            images, kept, split_skipped = _decode(root, candidates, image_size, channels)
            cache.save(
                split, key, images, {"files": [f.rel for f in kept], "skipped": split_skipped}
            )
        skipped += split_skipped
        _check_classes(root, split, files[split], {f.rel for f in kept}, skipped)
        sets[split] = ImageSet(
            images=images,
            labels=np.array([f.label for f in kept], dtype=np.int64),
            files=[f.rel for f in kept],
            original_sizes=np.array([index[f.rel][:2] for f in kept], dtype=np.int64).reshape(
                -1, 2
            ),
            groups=assign([f.rel for f in kept], manifest, header_ids, str(groups_file), unmatched),
        )
    group_source = "none"
    if manifest is not None:
        group_source = f"manifest {groups_file}"
    elif any(s.groups is not None for s in sets.values()):
        group_source = "DICOM PatientID"
    return Loaded(
        class_names,
        sets,
        image_size,
        channels,
        content_hash,
        skipped,
        "folder",
        group_source,
        unmatched,
    )
