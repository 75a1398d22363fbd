"""``load_dataset``: one entry point for image folders and MedMNIST ``.npz`` files."""

import os
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path

import numpy as np

from dataloader.errors import DataError
from dataloader.folder import load_folder
from dataloader.groups import FOLDER_SOURCE, check_overlap, group_split, merge_duplicates
from dataloader.imageset import MAX_IMAGE_SIDE, DatasetSplits
from dataloader.leakage import duplicate_clusters
from dataloader.npz import load_npz
from dataloader.scan import SPLITS, check_split_names, layout, present_splits
from dataloader.splits import carve_report, stratified_split


def _image_size(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, Integral) else tuple(image_size)
    if len(size) != 2 or not all(
        isinstance(v, Integral) and 1 <= v <= MAX_IMAGE_SIDE for v in size
    ):
        raise DataError(
            "image_size must be a positive int or (height, width) up to "
            f"{MAX_IMAGE_SIDE}, got {image_size!r}"
        )
    return int(size[0]), int(size[1])


def _check_args(channels: int | None, val_fraction: float, splits: Sequence[str]) -> list[str]:
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise DataError(f"splits must be a non-empty subset of {SPLITS}, got {tuple(splits)!r}")
    return [s for s in SPLITS if s in splits]


def _check_carvable(units: np.ndarray, path: Path, groups: np.ndarray) -> None:
    """Raise ``DataError`` when the training images are all one unit to carve (``units``: their
    ``groups``, those that copies of an image join merged into one): none can be held out."""
    names = {str(name) for name in units.tolist()}  # merged names are numpy strings
    if len(names) != 1:
        return
    merged = len(set(groups.tolist())) > 1
    joined = " (copies of images joined the patients into one)" if merged else ""
    raise DataError(
        f"{path}: all {len(units)} training images belong to one patient (group) "
        f"{next(iter(names))!r}{joined}, so none can be held out for validation by patient; add "
        "a val/ folder, or a groups.csv manifest (file,group) giving each image its real "
        "patient (--allow-group-overlap does not apply: it only lets test share patients)"
    )


def load_dataset(
    path: str | os.PathLike,
    image_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    splits: Sequence[str] = SPLITS,
    cache_dir: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    groups_file: str | os.PathLike | None = None,
    allow_group_overlap: bool = False,
    min_image_size: int | None = None,
    max_image_size: int | None = None,
) -> DatasetSplits:
    """Load an image folder or a MedMNIST ``.npz`` as uint8 arrays of one size and channel count.

    Args:
        path: A folder ``train/<class>/``, ``test/<class>/`` (``val/<class>/`` optional) of PNG,
            JPEG or DICOM files, or a MedMNIST ``.npz`` file.
        image_size: ``int`` or ``(H, W)``; None keeps the typical size of the training images
            (folders: the median height and width; of all loaded images without train) within
            ``min_image_size`` and ``max_image_size``.
        channels: 1 or 3; None gives 3 when any image shows colour (a grey scan stored as
            RGB does not: ``dataloader.images.any_colour``), else 1.
        val_fraction: Share of each training class moved to val when there is no val split;
            exact and near copies of an image (``leakage.duplicate_clusters``) move together.
        seed: Seed of that stratified split.
        splits: The splits to load; the others come back as None.
        cache_dir: Where decoded images are cached; default ``<path>/.cache`` (``.npz``: a
            ``.cache`` folder next to the file), a temp folder when that is not writable.
        class_names: Label order to use (``.npz``: names of labels 0, 1, ...; folders: every
            class folder must be one of them). Default: sorted folder names of train, or
            ``"0"``, ``"1"``, ... for ``.npz``.
        groups_file: CSV manifest ``file,group`` giving each image its group (patient); default
            ``<path>/groups.csv`` when it exists, else DICOM PatientIDs (folders only). With
            groups, val is carved from train by group.
        allow_group_overlap: Accept a group with images in test and in train or val.
        min_image_size: Without ``image_size``, a typical size whose shorter side is under this
            sets a size scaled up to it (aspect kept): the trainer's ``--min-image-size``.
        max_image_size: Without ``image_size``, a typical size whose longer side is over this sets
            a size scaled down to it (aspect kept; it wins over ``min_image_size``): the
            trainer's ``--max-image-size``.

    Raises:
        DataError: For a missing path, a missing split, an empty class folder, a folder without
            images, an ``.npz`` without the MedMNIST keys, a group manifest that lacks images,
            training images all of one group when val is to be carved from them,
            a group in test and train/val (unless allowed), or bad arguments. Corrupt files are
            not errors: they are skipped and listed in ``stats["skipped"]``.
    """
    size = _image_size(image_size)
    for name, bound in (("min_image_size", min_image_size), ("max_image_size", max_image_size)):
        if bound is not None and not (isinstance(bound, Integral) and 0 <= bound <= MAX_IMAGE_SIDE):
            raise DataError(f"{name} must be an int from 0 to {MAX_IMAGE_SIDE}, got {bound!r}")
    wanted = _check_args(channels, val_fraction, splits)
    path = Path(path)
    names = list(class_names) if class_names is not None else None
    cache = Path(cache_dir) if cache_dir is not None else None
    if not path.exists():
        raise DataError(
            f"{path} does not exist; expected a folder like {layout(path)}, or a MedMNIST .npz file"
        )
    to_read = sorted(set(wanted) | ({"train"} if "val" in wanted else set()), key=SPLITS.index)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(f"{path} is a file but not a .npz; pass a MedMNIST .npz or a folder")
        if groups_file is not None:
            raise DataError(
                f"groups_file is for image folders; {path} is a .npz, whose images have no "
                "file names to list (import it with `python -m dataloader import-medmnist`)"
            )
        loaded = load_npz(
            path, to_read, size, channels, names, cache, min_image_size, max_image_size
        )
    else:
        check_split_names(path)
        if not present_splits(path):
            raise DataError(f"{path} has no train/, val/ or test/ folder; expected {layout(path)}")
        if not (path / "val").is_dir():
            to_read = [s for s in to_read if s != "val"]
        manifest = Path(groups_file) if groups_file is not None else None
        if manifest is not None and not manifest.is_file():
            raise DataError(f"group manifest {manifest} does not exist; pass a CSV file,group")
        loaded = load_folder(
            path, to_read, size, channels, names, cache, manifest, min_image_size, max_image_size
        )

    sets = loaded.sets
    val_source = val_how = "none"
    carve_units = carve = None
    if "val" in wanted and "val" in sets:
        val_source = val_how = loaded.format
    elif "val" in wanted and val_fraction > 0:
        train = sets["train"]
        # Copies of one image (exact or near) stay on one side, like the images of a patient.
        clusters = duplicate_clusters(train.images)
        copies = len(clusters) - (clusters.max() + 1 if len(clusters) else 0)
        if train.groups is not None:
            units = merge_duplicates(train.groups, clusters) if copies else train.groups
            _check_carvable(units, path, train.groups)
            how, val_how = "by group", "carved_by_group"
            why = "the images of a patient (group)" + (" and copies of an image" if copies else "")
        else:
            units, how, why = clusters, "stratified", "copies of an image (exact or near)"
            val_how = "carved_keeping_copies" if copies else "carved"
        if val_how == "carved":  # every image its own unit: each class's share, exactly
            train_idx, val_idx = stratified_split(train.labels, val_fraction, seed)
        else:  # one rule for patients and for copies
            train_idx, val_idx = group_split(train.labels, units, val_fraction, seed)
        if len(val_idx):
            sets["val"] = train.subset(val_idx)
            sets["train"] = train.subset(train_idx)
            kept = f"; {copies} duplicate image(s) kept with their copies" if copies else ""
            val_source = f"carved from train {how} (fraction {val_fraction}, seed {seed}{kept})"
            carve_units = [
                len(set(units[train.labels == c].tolist())) for c in range(len(loaded.class_names))
            ]
            why = f"{why} stay together"
            carve = carve_report(train.labels, val_idx, val_fraction, loaded.class_names, why)
        else:
            val_how = "none"
    check_overlap(sets, str(path), allow_group_overlap, loaded.group_source == FOLDER_SOURCE)
    ds = DatasetSplits(
        class_names=loaded.class_names,
        train=sets.get("train") if "train" in wanted else None,
        val=sets.get("val") if "val" in wanted else None,
        test=sets.get("test") if "test" in wanted else None,
        source=str(path),
        content_hash=loaded.content_hash,
        image_size=loaded.image_size,
        channels=loaded.channels,
        format=loaded.format,
        val_source=val_source,
        val_how=val_how,
        val_carve_units=carve_units,
        val_carve=carve,
        skipped=loaded.skipped,
        group_source=loaded.group_source,
        unmatched_rows=loaded.unmatched_rows,
        split_hashes=loaded.split_hashes,
        group_digest=loaded.group_digest,
    )
    return ds
