"""Dataset statistics as a JSON-able dict (printed by ``python -m dataloader stats``)."""

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from dataloader.groups import FOLDER_SOURCE, overlap_report, ungrouped
from dataloader.leakage import leakage_report
from dataloader.manifest import MAX_LISTED
from dataloader.pseudonyms import shown_file
from dataloader.scan import SPLITS

if TYPE_CHECKING:
    from dataloader.imageset import DatasetSplits, ImageSet


def describe_skipped(skipped: list[dict], listed_in: str, count: int | None = None) -> str | None:
    """One line on the files the loader left out (unreadable, or not an image), naming the first
    and why, and the file that lists each; None when every file was read.

    Args:
        skipped: ``{file, reason}`` entries, in the loader's order (possibly only the first ones).
        listed_in: The artifact that lists them all (``dataset_stats.json``, ``metrics.json``).
        count: How many were left out, when ``skipped`` holds only the first ones.
    """
    count = len(skipped) if count is None else count
    if not count or not skipped:
        return None
    first = skipped[0]
    more = f" and {count - 1} more" if count > 1 else ""
    files = "file was" if count == 1 else "files were"
    return (
        f"{count} {files} left out (unreadable, or not an image): {first['file']} "
        f"({first['reason']}){more}; {listed_in} lists each with its reason"
    )


def channel_mean_std(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] of uint8 ``N×H×W×C`` images, exact, from histograms.

    A 256-bin histogram per channel avoids a float copy of the whole array.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[-1]):
        hist = np.zeros(256, dtype=np.int64)
        for start in range(0, len(images), 1024):
            hist += np.bincount(images[start : start + 1024, ..., c].ravel(), minlength=256)
        total = hist.sum()
        mean = float((hist * values).sum() / total) if total else 0.0
        var = float((hist * (values - mean) ** 2).sum() / total) if total else 0.0
        means.append(round(mean, 6))
        stds.append(round(var**0.5, 6))
    return means, stds


def _sizes(sets: "list[ImageSet]") -> dict[str, Any]:
    arrays = [s.original_sizes for s in sets if s.original_sizes is not None and len(s)]
    if not arrays:
        return {}
    sizes = np.concatenate(arrays)
    common, count = Counter(map(tuple, sizes.tolist())).most_common(1)[0]
    return {
        "min": sizes.min(axis=0).tolist(),
        "max": sizes.max(axis=0).tolist(),
        "most_common": list(common),
        "most_common_count": count,
        "distinct": len({tuple(s) for s in sizes.tolist()}),
        "order": "height, width",
    }


def modality_counts(sets: "dict[str, ImageSet]") -> dict[str, Any]:
    """The DICOM modalities of the images of ``sets`` (split name → images): ``counts`` per
    Modality code, ``no_modality`` (DICOM files that name none), ``not_dicom`` (PNG, JPEG,
    ``.npz`` images), ``multi_frame`` (DICOM files of several frames, whose first is the image)
    and the ``splits`` counted."""
    codes: Counter[str] = Counter()
    no_modality = not_dicom = multi_frame = 0
    for images in sets.values():
        if images.frames is not None:
            multi_frame += int((images.frames > 1).sum())
        for modality in (
            images.modalities if images.modalities is not None else [None] * len(images)
        ):
            if modality is None:
                not_dicom += 1
            elif not modality:
                no_modality += 1
            else:
                codes[modality] += 1
    return {
        "counts": dict(sorted(codes.items())),
        "no_modality": no_modality,
        "multi_frame": multi_frame,
        "not_dicom": not_dicom,
        "splits": list(sets),
    }


def bit_depth_counts(sets: "dict[str, ImageSet]") -> dict[str, Any]:
    """How many images of each split store each number of bits per sample (``per_split``:
    split → ``{"8": n, "16": m}``; ``ImageSet.bit_depths``, a split without them left out) and
    a ``note`` when PNG/JPEG images of 8 bits or fewer and deeper ones (16-bit PNG) are mixed,
    within a split or between splits, else None. Decoding reads the first as stored and
    stretches the others between their percentiles (``mlpipeline_model.pil_pixels``): one
    picture exported at both depths becomes two different images (a 40–179 grey 8-bit image
    stays 40–179, its 16-bit copy spans 0–255). DICOM files are counted by BitsStored but not
    in the note: grey ones are windowed or stretched whatever their depth."""
    per_split: dict[str, dict[str, int]] = {}
    shallow: dict[str, int] = {}  # PNG/JPEG images of 8 bits or fewer, per split
    deep: dict[str, int] = {}  # PNG images of more
    for name, images in sets.items():
        if images.bit_depths is None:
            continue
        depths = images.bit_depths.tolist()
        per_split[name] = {str(bits): n for bits, n in sorted(Counter(depths).items())}
        modalities = images.modalities if images.modalities is not None else [None] * len(depths)
        pictures = [
            bits for bits, modality in zip(depths, modalities, strict=True) if modality is None
        ]
        shallow[name] = sum(bits <= 8 for bits in pictures)
        deep[name] = sum(bits > 8 for bits in pictures)
    note = None
    if any(shallow.values()) and any(deep.values()):
        counts = "; ".join(
            f"{name}: {shallow[name]} of 8 bits or fewer, {deep[name]} of 16"
            for name in per_split
            if shallow[name] or deep[name]
        )
        note = (
            f"8-bit and 16-bit PNG/JPEG images are mixed ({counts}): 16-bit images are stretched "
            "between their 0.5th and 99.5th percentiles, 8-bit ones read as stored, so one "
            "picture exported at both depths is learned as two different images; export them "
            "all at one depth (bit_depths of the dataset statistics counts them per split)"
        )
    return {"per_split": per_split, "note": note}


def training_stats(ds: "DatasetSplits") -> dict[str, Any]:
    """The part of ``compute_stats`` that a model is built from: ``image_size``, ``channels``,
    per-channel ``mean``/``std`` and the split they come from (``mean_std_split``), and the
    DICOM ``modalities`` of the train and val images (``modality_counts``), without the counts
    and the all-pairs leakage check."""
    loaded = {name: ds.split(name) for name in SPLITS if ds.split(name) is not None}
    reference = "train" if "train" in loaded else next(iter(loaded), None)
    mean, std = channel_mean_std(loaded[reference].images) if reference else ([], [])
    fitted = {name: s for name, s in loaded.items() if name != "test"} or loaded
    return {"image_size": list(ds.image_size), "channels": ds.channels, "mean": mean, "std": std,
            "mean_std_split": reference, "modalities": modality_counts(fitted)}  # fmt: skip


def compute_stats(ds: "DatasetSplits") -> dict[str, Any]:
    """Counts per split and class, class distribution, original image sizes, bits per sample
    per split with a note when 8-bit and 16-bit images are mixed (``bit_depth_counts``), channels,
    per-channel mean/std over train (in [0, 1]), the skipped files with reasons, source and hash,
    groups per split with the groups shared between splits (``groups``, None without groups) and
    the duplicate images across splits and those under two classes (``leakage``, see
    ``dataloader.leakage``).

    Mean and std come from the training split, or from the first loaded split when train was not
    loaded (``mean_std_split`` says which).
    """
    loaded = {name: ds.split(name) for name in SPLITS if ds.split(name) is not None}
    counts: dict[str, dict[str, int]] = {}
    distribution: dict[str, dict[str, float]] = {}
    for name, images in loaded.items():
        per_class = np.bincount(images.labels, minlength=len(ds.class_names))
        counts[name] = {c: int(n) for c, n in zip(ds.class_names, per_class, strict=False)}
        counts[name]["total"] = len(images)
        total = max(len(images), 1)
        distribution[name] = {
            c: round(int(n) / total, 6) for c, n in zip(ds.class_names, per_class, strict=False)
        }
    return {
        "source": ds.source,
        "format": ds.format,
        "content_hash": ds.content_hash,
        "split_hashes": dict(ds.split_hashes),
        "group_digest": ds.group_digest,
        "class_names": list(ds.class_names),
        "num_classes": len(ds.class_names),
        **training_stats(ds),
        "counts": counts,
        "class_distribution": distribution,
        "original_sizes": _sizes(list(loaded.values())),
        "val_source": ds.val_source,
        "val_how": ds.val_how,
        "val_carve_units": (
            None
            if ds.val_carve_units is None
            else dict(zip(ds.class_names, ds.val_carve_units, strict=True))
        ),
        "val_carve": ds.val_carve,
        "bit_depths": bit_depth_counts(loaded),
        "skipped_count": len(ds.skipped),
        "skipped": list(ds.skipped),
        "groups": _groups(ds, loaded),
        "leakage": leakage_report(loaded, list(ds.class_names)),
    }


def _groups(ds: "DatasetSplits", loaded: "dict[str, ImageSet]") -> dict[str, Any] | None:
    report = overlap_report(loaded)
    if report is None:
        return None
    listed = [shown_file(row, ds.class_names) for row in ds.unmatched_rows[:MAX_LISTED]]
    unmatched = {"count": len(ds.unmatched_rows), "examples": listed}
    # (a manifest gives every image a group: there the prefix could only be a group's own name)
    own = ds.group_source in ("DICOM PatientID", FOLDER_SOURCE)
    without = ungrouped(loaded) if own else {}
    return {
        "source": ds.group_source,
        **report,
        "ungrouped": {name: without.get(name, 0) for name in report["per_split"]},
        "unmatched_rows": unmatched,
    }
