"""Image folders: ``<root>/{train,val,test}/<class>/<image files>`` (PNG, JPEG, DICOM).

Loading scans the file list, digests the files' bytes (each digest cached by the file's stat:
``dataloader.digests``), reads each new file's header once (cached as the "index"), and decodes
a split only when its cache entry is missing (or, in a load judging the data set grey, when the
entry does not record whether a file in it shows colour).
"""

from pathlib import Path
from statistics import median_low

import numpy as np

from dataloader import digests
from dataloader.cache import ArrayCache, make_key
from dataloader.errors import DataError
from dataloader.groups import FOLDER_SOURCE, assign, deciding, folder_groups
from dataloader.images import any_colour, read_header, read_pixels, shows_colour
from dataloader.imageset import ImageSet, Loaded, native_fit
from dataloader.manifest import MANIFEST_NAME, read_manifest, unmatched_rows
from dataloader.pseudonyms import shown_file
from dataloader.scan import SUFFIXES, ScannedFile, layout, scan
from mlpipeline_model import ImageDecodeError, conform, misfit

DOES_NOT_FIT = "does not fit"  # the reason of an image skipped by ``misfit``
# Bump it when ``read_header`` returns more or refuses other files: an index cached before is
# read again (2: a DICOM file's Modality, after its PatientID; 3: DICOM objects that are not
# images, such as RT dose grids, are skipped, as the served model refuses them; 4: its frames;
# 5: the bits per sample it stores).
HEADER_VERSION = 5


REASON_CHARS = 500  # of a skipped file's reason: a DICOM one names its compression and decoders


def _reason(exc: Exception) -> str:
    """Why a file is skipped: our decoders' own words, or the library's error and its type."""
    if isinstance(exc, ImageDecodeError):  # written for the user: no class name in front
        return str(exc)[:REASON_CHARS]
    return f"{type(exc).__name__}: {exc}"[:REASON_CHARS]


def _index(
    root: Path, files: list[ScannedFile], cache: ArrayCache, key: str
) -> dict[str, list | str]:
    """Relative path → ``[height, width, is_colour, group, modality, frames, bits]``
    (``read_header``) or why the header is unreadable."""
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


def _channels(
    root: Path, readable: list[ScannedFile], index: dict, cache: ArrayCache, key: str
) -> int:
    """3 when a file stored as colour shows colour (``any_colour``: grey scans stored as RGB,
    JPEG exports, do not make a data set colour), else 1; remembered with the file list."""
    colour = cache.load_json("colour", key)
    if not isinstance(colour, bool):
        colour = any_colour([root / f.rel for f in readable if index[f.rel][2]])
        cache.save_json("colour", key, colour)
    return 3 if colour else 1


class _ColourFound(Exception):
    """A file showing colour was decoded into a data set judged grey."""


def _decode(
    root: Path, files: list[ScannedFile], size: tuple[int, int], channels: int, notice: bool
) -> tuple[np.ndarray, list[ScannedFile], list[dict], bool | None]:
    """The files' pixels conformed to ``size`` and ``channels``, the files kept, those skipped,
    and for a grey split whether a kept file shows colour (``shows_colour``, checked also when
    the load named its channels: recorded with the cached split, so that a later load judging
    the data set's channels from its files can trust the entry); None for a colour split.

    Raises:
        _ColourFound: ``notice`` is set and a file shows colour (``shows_colour``): the data set
            was judged grey from a sample of its files (``any_colour``) that missed it.
    """
    images = np.empty((len(files), size[0], size[1], channels), dtype=np.uint8)
    kept: list[ScannedFile] = []
    skipped: list[dict] = []
    colour = False
    for f in files:
        try:
            pixels = read_pixels(root / f.rel)
            images[len(kept)] = conform(pixels, size, channels)
        except Exception as exc:  # a corrupt file is skipped and reported, never a crash
            skipped.append({"file": f.rel, "reason": f"cannot decode: {_reason(exc)}"})
        else:
            kept.append(f)
            # Only files stored as colour decoded into a grey data set pay for the check (the
            # flag matters for grey entries only; grey PNGs and DICOM decode to H×W).
            if channels == 1 and not colour and pixels.ndim == 3 and shows_colour(pixels):
                if notice:
                    raise _ColourFound(f.rel)
                colour = True
    return images[: len(kept)], kept, skipped, colour if channels == 1 else None


def _check_classes(root: Path, split: str, files: list[ScannedFile], kept: set[str], skipped: list):
    """Every class folder must keep at least one readable image."""
    by_label: dict[int, list[ScannedFile]] = {}
    for f in files:
        by_label.setdefault(f.label, []).append(f)
    for group in by_label.values():
        if not any(f.rel in kept for f in group):
            # The class folder, and the first file as results name it (FILE_NAMES): the text
            # may end in a job record that many read.
            split_name, class_name = group[0].rel.split("/")[:2]
            folder = root / split_name / class_name
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
                f"(first: {shown_file(group[0].rel, [class_name])}: {reason}); {fix}"
            )


def _typical_size(
    index: dict[str, list | str], files: dict[str, list[ScannedFile]], readable: list[ScannedFile]
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
    DICOM PatientIDs, else from the folders below the class folders (see ``dataloader.groups``).
    """
    if groups_file is None and (root / MANIFEST_NAME).is_file():
        groups_file = root / MANIFEST_NAME
    manifest = read_manifest(groups_file, root) if groups_file is not None else None
    for split in splits:
        if not (root / split).is_dir():
            raise DataError(
                f"{root / split} is missing; expected {layout(root)}, or load without {split!r}"
            )
    class_names, files, skipped = scan(root, splits, class_names)
    all_files = [f for s in splits for f in files[s]]
    unmatched: list[str] = []
    if manifest is not None:
        scanned = {f.rel for f in all_files} | {s["file"] for s in skipped}
        unmatched = unmatched_rows(manifest, scanned, root, splits)
    # The data's identity and the caches' keys: names and contents (``dataloader.digests``).
    cache = ArrayCache(cache_dir or root / ".cache", str(root.resolve()), cache_dir is not None)
    digest_of = digests.file_digests(root, [f.rel for f in all_files], cache)
    content_hash = digests.content_hash(digest_of)
    index = _index(root, all_files, cache, make_key("index", HEADER_VERSION, content_hash))
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
    colour_key = make_key("colour", content_hash)
    judged = channels is None
    if channels is None:
        channels = _channels(root, readable, index, cache, colour_key)
    header_ids = {f.rel: index[f.rel][3] for f in readable if len(index[f.rel]) > 3}
    by_folder = None
    # PatientIDs in test alone give train no patients to compare with (``deciding``)
    if manifest is None and not any(header_ids[rel] for rel in deciding(list(header_ids))):
        by_folder = folder_groups([f.rel for f in readable])  # patients by their folders
        header_ids = by_folder or {}
    dicom = any(index[f.rel][4] is not None for f in readable)  # else no image has a modality

    def load_sets(channels: int, notice: bool) -> tuple[dict[str, ImageSet], list[dict]]:
        """Each split's images (from the cache or decoded) and every file skipped."""
        sets: dict[str, ImageSet] = {}
        left_out = list(skipped)
        for split in splits:
            candidates = []
            for f in files[split]:
                if not isinstance(index[f.rel], list):
                    continue
                # A thumbnail or a strip (refused when served) is skipped from its header's size.
                if why := misfit(tuple(index[f.rel][:2]), image_size):
                    left_out.append({"file": f.rel, "reason": f"{DOES_NOT_FIT}: {why}"})
                else:
                    candidates.append(f)
            split_list = [[f.rel, f.label, digest_of[f.rel]] for f in candidates]
            key = make_key(split_list, list(image_size), channels)
            hit = cache.load(split, key)
            if hit is not None and notice and hit[1].get("shows_colour") is not False:
                # Cached by a load that named its channels (--channels 1, a grey model's
                # evaluator), a file in it shows colour, or an older entry did not record it.
                if hit[1].get("shows_colour"):
                    raise _ColourFound(split)
                hit = None  # not recorded: decoded again, which checks it
            if hit is not None:
                images, meta = hit
                kept_rels, split_skipped = set(meta["files"]), meta["skipped"]
                kept = [f for f in candidates if f.rel in kept_rels]
            else:
                images, kept, split_skipped, colour = _decode(
                    root, candidates, image_size, channels, notice
                )
                meta = {
                    "files": [f.rel for f in kept],
                    "skipped": split_skipped,
                    "shows_colour": colour,
                }
                cache.save(split, key, images, meta)
            left_out += split_skipped
            _check_classes(root, split, files[split], {f.rel for f in kept}, left_out)
            sets[split] = ImageSet(
                images=images,
                labels=np.array([f.label for f in kept], dtype=np.int64),
                files=[shown_file(f.rel, class_names) for f in kept],  # or pseudonyms: FILE_NAMES
                original_sizes=np.array([index[f.rel][:2] for f in kept], dtype=np.int64).reshape(
                    -1, 2
                ),
                groups=assign(
                    [f.rel for f in kept],
                    manifest,
                    header_ids,
                    str(groups_file),
                    unmatched,
                    class_names,
                ),
                modalities=(
                    np.array([index[f.rel][4] for f in kept], dtype=object) if dicom else None
                ),
                frames=(
                    np.array([index[f.rel][5] for f in kept], dtype=np.int64) if dicom else None
                ),
                bit_depths=np.array([index[f.rel][6] for f in kept], dtype=np.int64),
            )
        return sets, left_out

    try:
        # Judged grey from a sample of the files stored as colour: one among the rest that shows
        # colour, noticed as it is decoded, makes the data set colour after all.
        sets, skipped = load_sets(channels, notice=judged and channels == 1)
    except _ColourFound:
        cache.save_json("colour", colour_key, True)  # the next load decodes it as colour at once
        channels = 3
        sets, skipped = load_sets(channels, notice=False)
    group_source = "none"
    if manifest is not None:
        group_source = f"manifest {groups_file}"
    elif by_folder is not None:
        group_source = FOLDER_SOURCE
    elif any(s.groups is not None for s in sets.values()):
        group_source = "DICOM PatientID"
    return Loaded(
        class_names,
        sets,
        image_size,
        channels,
        content_hash,
        [{**s, "file": shown_file(s["file"], class_names)} for s in skipped],  # as files are
        "folder",
        group_source,
        unmatched,
        {s: digests.content_hash({f.rel: digest_of[f.rel] for f in files[s]}) for s in splits},
        None if manifest is None else digests.file_digest(groups_file),
    )
