"""The training data: loaded once through the data loader and held in memory as uint8 arrays.

Training and every choice it makes (early stopping, the best checkpoint, the decision threshold)
see only the train and val splits. The test split is read once, separately, for an audit only:
its counts, its groups (a patient in test and in train/val is an error unless allowed) and the
duplicate check against train/val. Its images are then dropped, its labels never reach the model,
and an unreadable test split only makes the audit say so.
"""

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from common import InvalidInput
from dataloader import (
    FOLDER_SOURCE,
    DataError,
    DatasetSplits,
    check_overlap,
    compute_stats,
    load_dataset,
    training_stats,
    val_count,
)
from runs import ANSWER_COLUMNS, DECODING_VERSION, Preprocessing
from trainer import distributed
from trainer.data_warnings import AUDIT_NOT_DONE, NO_TEST
from trainer.engine import Batches


def load(args: argparse.Namespace, dist_info: distributed.DistInfo):
    """Train and validation splits of ``args.data_dir``; under torchrun rank 0 fills the cache."""
    dataset = None
    if dist_info.is_main:
        dataset = _load(args)
    distributed.barrier(dist_info)
    if not dist_info.is_main:
        dataset = _load(args)
    return dataset


def _load(args: argparse.Namespace):
    path = Path(args.data_dir)
    names = getattr(args, "class_names", None)
    if names is not None and path.is_dir():
        raise DataError(
            f"--class-names names a .npz's labels; {path} is a folder, whose classes are its "
            "subfolders' names: rename those, or leave --class-names out"
        )
    options = {
        "class_names": names,
        "image_size": args.image_size,
        "min_image_size": getattr(args, "min_image_size", None),
        "max_image_size": getattr(args, "max_image_size", None),
        "val_fraction": args.val_fraction,
        "seed": args.seed,
        "groups_file": getattr(args, "groups_file", None),
    }
    allow = getattr(args, "allow_group_overlap", False)
    dataset = load_dataset(path, splits=("train", "val"), allow_group_overlap=allow, **options)
    _check_held_out(dataset, args.val_fraction)
    # counted from the labels: dataset.stats would run the whole statistics pass (leakage too)
    counts = np.bincount(dataset.train.labels, minlength=len(names)) if names is not None else []
    if unused := [name for name, n in zip(names or [], counts, strict=False) if n == 0]:
        raise DataError(
            f"--class-names gives {len(names)} names, but {path} has no training image of "
            f"label(s) {', '.join(str(names.index(c)) for c in unused)} ({', '.join(unused)}): "
            "give one name per label of the file, in label order"
        )
    if path.is_dir() and not (path / "test").is_dir():
        dataset._stats = {**dataset.stats, "test_audit": NO_TEST}
        return dataset
    try:  # the same train/val (same seed) plus test, for the statistics only
        audit = load_dataset(path, channels=dataset.channels, allow_group_overlap=True, **options)
    except DataError as exc:
        dataset._stats = {**dataset.stats, "test_audit": f"{AUDIT_NOT_DONE}{exc}"}
        return dataset
    splits = {"train": audit.train, "val": audit.val, "test": audit.test}
    check_overlap(splits, str(path), allow, audit.group_source == FOLDER_SOURCE)
    # What the model is built from stays the training splits' own: one colour image in test
    # would otherwise make the audit (and so the model's input) three channels.
    # (training_stats: the training splits' statistics without their own leakage pass, which
    # the audit's statistics make over all splits)
    trained_on = training_stats(dataset)
    stats = {
        **audit.stats,
        **trained_on,
        "test_audit": "counts, groups and duplicates only; not for training",
    }
    return replace(
        dataset, content_hash=audit.content_hash, split_hashes=audit.split_hashes, _stats=stats
    )


def _check_held_out(dataset: DatasetSplits, fraction: float) -> None:
    """``InvalidInput`` when a validation split was to be carved from train but ``fraction`` of
    each class's training images rounds to no image (``dataloader.stratified_split``: a class
    gives ``round(n × fraction)``), or each class's are one unit to keep together (copies of
    one image, one patient). With one class ``training_set`` says that instead."""
    counts = np.bincount(dataset.train.labels, minlength=len(dataset.class_names))
    if dataset.val_source != "none" or fraction <= 0 or np.count_nonzero(counts) < 2:
        return
    if any(val_count(int(n), fraction) > 0 for n in counts):
        # The fraction gives images, but each class is one unit: copies of one image (a failed
        # export writes one picture again and again) or one patient's, kept together.
        raise InvalidInput(
            f"{dataset.source} gives no validation images: carving --val-fraction {fraction} from "
            f"train held out none, as {TOGETHER}, and no class could give one without all its "
            "training images (the dataset statistics' leakage lists copies of one image); check "
            "the export, or add a val/ folder"
        )
    low, high = int(counts[counts > 0].min()), int(counts.max())
    per_class = f"{low}" if low == high else f"{low} to {high}"
    larger = "more training images"
    if high > 1:  # the fraction that gives the largest class one image
        needed = next(f / 100 for f in range(1, 100) if val_count(high, f / 100) >= 1)
        larger = f"a --val-fraction of at least {needed}, more training images"
    raise InvalidInput(
        f"{dataset.source} gives no validation images: --val-fraction {fraction} of the "
        f"{per_class} training images per class rounds to none; use {larger}, or add a val/ "
        "folder"
    )


# Why a carved validation split can take a class whole, or nothing: what it keeps together.
TOGETHER = (
    "the validation split carved from train keeps copies of an image (exact or near, even under "
    "two classes) and the images of one patient together"
)


def model_modalities(stats: dict[str, Any], declared: str | None) -> list[str] | None:
    """The DICOM modalities the model records (``Preprocessing.modalities``): ``declared``
    (``--modality``, ``"CT,US"``) when given, else those of the DICOM training images
    (``stats["modalities"]``, ``dataloader.modality_counts``); None when neither names one.

    Raises:
        InvalidInput: A training file's Modality is not declared, or every training image is
            a DICOM file and a declared modality is none of theirs (the model would accept
            images of a modality it never saw).
    """
    found = stats.get("modalities") or {}
    codes = sorted(found.get("counts") or {})
    if not declared:
        return codes or None
    wanted = declared.split(",")
    where = stats.get("source") or "the data set"
    others = int(found.get("no_modality") or 0) + int(found.get("not_dicom") or 0)
    if stray := [c for c in codes if c not in wanted]:
        # all DICOM and named: a declared code none has would be refused next, so not offered
        offer = sorted({*wanted, *codes}) if others else codes
        raise InvalidInput(
            f"--modality {declared}, but training images in {where} are DICOM files of "
            f"Modality {', '.join(stray)}: declare {','.join(offer)}"
            f"{' if the model is meant for them too' if others else ''} or leave --modality "
            "out, or train on the declared modality only"
        )
    if codes and not others and (unseen := [w for w in wanted if w not in codes]):
        raise InvalidInput(
            f"--modality {declared}, but every training image in {where} is a "
            f"DICOM file of Modality {', '.join(codes)} and none is {', '.join(unseen)}: the "
            f"model would accept images it never saw; declare {','.join(codes)} or leave "
            "--modality out"
        )
    return wanted


def modality_warning(stats: dict[str, Any], declared: str | None) -> str | None:
    """One line when the served model will classify multi-frame inputs by their first frame (as
    it learnt training files), refuse inputs like training files (DICOM files without a
    Modality), classify DICOM images of other modalities than its own
    (it records none), or refuse some modality its PNG/JPEG training images may be (it records
    only its DICOM files'); None when none of these holds."""
    found = stats.get("modalities") or {}
    lines = [_frames_line(found), _modality_line(found, declared)]
    return "; and ".join(line for line in lines if line) or None


def _frames_line(found: dict[str, Any]) -> str | None:
    if not (several := int(found.get("multi_frame") or 0)):
        return None
    return (
        f"{several} DICOM training or validation file(s) hold several frames (a cine loop or "
        "a volume), of which the model learns the first frame only, and so it classifies the "
        "first frame of the multi-frame files it is sent: export the frames to classify as "
        "single-frame files if the first frame is not the image to judge"
    )


def _modality_line(found: dict[str, Any], declared: str | None) -> str | None:
    codes = sorted(found.get("counts") or {})
    missing = int(found.get("no_modality") or 0)
    if missing and (declared or codes):  # the model will refuse files like these
        return (
            f"{missing} DICOM training file(s) name no Modality, and the model, recording "
            f"{declared or ','.join(codes)}, refuses DICOM files without one, as these are: give "
            "them their Modality, or train without them"
        )
    if declared:
        return None
    others = int(found.get("not_dicom") or 0)
    if not codes:
        return (
            "no training image is a DICOM file naming its Modality and --modality was not "
            "given: the model records no modality and will classify DICOM images of every "
            "modality (a CT slice sent to a dermatology model gets an answer); declare the "
            "training images' modality with --modality CODE (US, CT, MR, CR, DX, MG, XC, DMS, "
            "OT...)"
        )
    if others:
        return (
            f"{others} training image(s) are not DICOM: the model records "
            f"the modality of the DICOM ones ({', '.join(codes)}) and refuses DICOM images of "
            "any other; declare all of them with --modality if the others are of another"
        )
    return None


def training_set(dataset, modality: str | None = None) -> tuple[Batches, Batches, Preprocessing]:
    """The in-memory train and validation batches and the run's preprocessing description;
    ``modality``: the trainer's ``--modality`` (``model_modalities``).

    Raises:
        InvalidInput: When there are fewer than two classes (in the training split: a class
            carved whole into validation is named), a class named as an output column of the
            model, no validation images, or a ``modality`` the DICOM training files contradict.
    """
    names = list(dataset.class_names)
    in_train = set(np.unique(dataset.train.labels).tolist())
    in_val = set(np.unique(dataset.val.labels).tolist()) if dataset.val is not None else set()
    went = [n for i, n in enumerate(names) if i not in in_train]
    carved = dataset.val_how.startswith("carved")
    if carved and len(names) >= 2 and went and all(names.index(n) in in_val for n in went):
        raise InvalidInput(
            f"every training image of {', '.join(map(repr, went))} in {dataset.source} went to "
            f"validation: {TOGETHER}, and theirs are all one such set; add a val/ folder with "
            "images of every class, or more distinct images of them"
        )
    if len(names) < 2 or len(in_train) < 2:
        present = [names[i] for i in np.unique(dataset.train.labels)] or names
        raise InvalidInput(
            f"{dataset.source} holds only one class ({', '.join(present)}); a classifier needs "
            f"at least two: put each class's images in its own folder under "
            f"{dataset.source}/train/<class>/."
        )
    if taken := [n for n in names if n in ANSWER_COLUMNS]:
        # the served model answers one column per class beside these: they would collide
        raise InvalidInput(
            f"the class {taken[0]!r} in {dataset.source} has the name of a column the model "
            f"answers with ({', '.join(ANSWER_COLUMNS)}) beside one per class: "
            + ("rename it in --class-names" if dataset.format == "npz" else "rename its folder")
        )
    if dataset.val is None or len(dataset.val) == 0:
        why = "" if dataset.val_source == "none" else f" ({TOGETHER})"
        raise InvalidInput(
            f"{dataset.source} gives no validation images{why}; add a val/ folder or use "
            "--val-fraction above 0 so that some training images are held out."
        )
    stats = dataset.stats or compute_stats(dataset)
    modalities = model_modalities(stats, modality)
    mean, std = stats["mean"], stats["std"]
    height, width = dataset.train.images.shape[1:3]
    preprocessing = Preprocessing(
        image_size=(int(height), int(width)),
        channels=int(dataset.train.images.shape[3]),
        class_names=names,
        mean=mean,
        std=std,
        decoding_version=DECODING_VERSION,
        modalities=modalities,
        multi_frame=bool((stats.get("modalities") or {}).get("multi_frame")),
    )
    train = Batches(dataset.train.images, dataset.train.labels, preprocessing.to_tensor)
    val = Batches(dataset.val.images, dataset.val.labels, preprocessing.to_tensor)
    return train, val, preprocessing
