"""The training data: loaded once through the data loader and held in memory as uint8 arrays.

Training and every choice it makes (early stopping, the best checkpoint, the decision threshold)
see only the train and val splits. The test split is read once, separately, for an audit only:
its counts, its groups (a patient in test and in train/val is an error unless allowed) and the
duplicate check against train/val. Its images are then dropped, its labels never reach the model,
and an unreadable test split only makes the audit say so.
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from common import InvalidInput
from dataloader import (
    DataError,
    check_overlap,
    compute_stats,
    describe_skipped,
    describe_unmatched,
    label_conflict_note,
    load_dataset,
    training_stats,
)
from runs import (
    DECISION_COLUMN,
    DECODING_VERSION,
    PREDICTED_COLUMN,
    Preprocessing,
    contract,
    schemas,
)
from trainer import distributed
from trainer.engine import Batches

AUDIT_NOT_DONE = "not done: "


NO_TEST = "no test split"  # the statistics' test_audit of a folder without test/


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
    check_overlap({"train": audit.train, "val": audit.val, "test": audit.test}, str(path), allow)
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
    return replace(dataset, content_hash=audit.content_hash, _stats=stats)


def leakage_warning(stats: dict[str, Any]) -> str | None:
    """One line on duplicates or shared groups across splits in ``stats``; None when clean."""
    parts = []
    leakage = stats.get("leakage") or {}
    for kind in ("exact", "near"):
        found = {pair: v["count"] for pair, v in leakage.get(kind, {}).items() if v["count"]}
        if found:
            listed = ", ".join(f"{n} {pair}" for pair, n in found.items())
            parts.append(f"{kind} duplicate images across splits ({listed})")
    overlap = (stats.get("groups") or {}).get("overlap", {})
    shared = {pair: v["count"] for pair, v in overlap.items() if v["count"]}
    if shared:
        parts.append("groups in two splits (" + ", ".join(f"{n} {p}" for p, n in shared.items()))
        parts[-1] += ")"
    if not parts:
        return None
    return "possible leakage: " + "; ".join(parts) + " (dataset_stats.json lists examples)"


def overlap_tag(stats: dict[str, Any]) -> str:
    """The tag ``contract.TEST_OVERLAP_TAG``: JSON ``{"exact": n, "near": n, "groups": n}``, what
    the test split shares with train and val (``leakage_warning``'s figures of the split pairs
    with test: duplicates summed over train/test and val/test, patients shared); ``{"audited":
    false}`` when the statistics hold no check of the test split (none, empty or not audited),
    so that a reader does not take an unchecked split for a clean one (a test split added
    after training is evaluated all the same). The dashboard reads it
    (``dashboard.leakage.overlap``) before the words of ``leakage_warning``."""
    found = schemas.DatasetStats.model_validate(stats)
    if not found.test_audited:
        return json.dumps({"audited": False})
    return json.dumps(found.overlap_counts(with_test=True))


def audit_warning(stats: dict[str, Any]) -> str | None:
    """One line when the test split exists but could not be audited (so neither a patient in
    test and train/val nor a duplicate across them was looked for); None otherwise."""
    audit = str(stats.get("test_audit", ""))
    if not audit.startswith(AUDIT_NOT_DONE):
        return None
    return (
        f"the test split was not checked for patients or duplicate images shared with "
        f"train/val: {audit.removeprefix(AUDIT_NOT_DONE)}; the evaluator will read that split, "
        "so fix it before evaluating"
    )


def manifest_warning(stats: dict[str, Any]) -> str | None:
    """One line on the rows of the group manifest that name no image; None when all do."""
    groups = stats.get("groups") or {}
    unmatched = groups.get("unmatched_rows") or {}
    if not unmatched.get("count"):
        return None
    manifest = str(groups.get("source", "")).removeprefix("manifest ")
    return f"the group manifest {manifest}: " + describe_unmatched(
        unmatched["examples"], unmatched["count"]
    )


def ungrouped_warning(stats: dict[str, Any]) -> str | None:
    """One line when some images have no group (patient) while others have one; None else."""
    without = {s: n for s, n in ((stats.get("groups") or {}).get("ungrouped") or {}).items() if n}
    if not without:
        return None
    listed = ", ".join(f"{split} {n}" for split, n in without.items())
    return (
        f"{sum(without.values())} image(s) have no patient (no DICOM PatientID, or an empty one: "
        f"{listed}) and count as a patient each, while the others have one, so one patient's "
        "images among them may sit on both sides of a split; give them their PatientID, or "
        "every image its patient in a groups.csv manifest (file,group)"
    )


def numbered_classes_warning(stats: dict[str, Any], named: bool = False) -> str | None:
    """One line when a ``.npz``'s classes are its bare label numbers (``named``: given by
    ``--class-names``, as they are meant): the served model answers with them; None otherwise."""
    names = stats.get("class_names") or []
    if named or stats.get("format") != "npz" or not all(name.isdigit() for name in names):
        return None
    return (
        f"the classes are named by their labels ({', '.join(map(repr, names))}): the served "
        "model answers with these numbers, which tell a client nothing; name them with "
        "--class-names in label order (BreastMNIST: malignant,benign)"
    )


def missing_classes(stats: dict[str, Any], split: str) -> list[str]:
    """The classes of which the loaded ``split`` holds no image ([] when it is not loaded)."""
    counts = stats.get("counts", {}).get(split)
    return [c for c in stats["class_names"] if counts.get(c, 0) == 0] if counts else []


def split_warnings(stats: dict[str, Any]) -> list[str]:
    """Lines on splits that lack classes: validation (its AUC is n/a, and what it chooses cannot
    see them) and test (the evaluator's figures of them are n/a), or no test split at all."""
    lines = []
    if val := missing_classes(stats, "val"):
        units = stats.get("val_carve_units") or {}
        in_train = stats.get("counts", {}).get("train", {})
        fix = "add images to val/<class>/ or use a larger --val-fraction"
        if all(units.get(c, 2) <= 1 < in_train.get(c, 0) for c in val):
            # one patient (or copies of one image): no fraction can hold any of it out
            fix = (
                "all training images of each belong to one patient (group) or are copies of "
                "one image, so none can be held out by patient: add a val/ folder, or a "
                "groups.csv manifest (file,group) giving each image its real patient"
            )
        lines.append(
            f"the validation split has no image of {', '.join(map(repr, val))}: validation AUC "
            f"is n/a (--select auc then chooses by accuracy) and the validation figures leave "
            f"them out; {fix}"
        )
    if stats.get("test_audit") == NO_TEST:  # (not audited: audit_warning says why)
        lines.append(
            f"{stats.get('source')} has no test split: the evaluator needs one (test/<class>/)"
        )
    elif test := missing_classes(stats, "test"):
        lines.append(
            f"the test split has no image of {', '.join(map(repr, test))}: the evaluator's "
            "figures of them will be n/a"
        )
    return lines


def warn_data(stats: dict[str, Any], named: bool = False) -> str | None:
    """Print the skipped-files, group-manifest, ungrouped-images, test-audit, label-conflict,
    validation-carve, split and leakage warnings there are (once: the trainer is a command,
    its stderr is its log); return the leakage one (the run records it)."""
    leakage = leakage_warning(stats)
    skipped = describe_skipped(stats.get("skipped") or [], contract.DATASET_STATS_JSON)
    conflicts = label_conflict_note(stats.get("leakage"), contract.DATASET_STATS_JSON)
    carve = (stats.get("val_carve") or {}).get("note")  # a carve far from --val-fraction
    messages = [numbered_classes_warning(stats, named), skipped, manifest_warning(stats)]
    messages += [ungrouped_warning(stats), audit_warning(stats)]
    messages += [conflicts, carve]
    for message in [*messages, *split_warnings(stats), leakage]:
        if message:
            print(f"warning: {message}", file=sys.stderr, flush=True)
    return leakage


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
    if taken := [n for n in names if n in (PREDICTED_COLUMN, DECISION_COLUMN)]:
        # the served model answers one column per class beside these: they would collide
        raise InvalidInput(
            f"the class {taken[0]!r} in {dataset.source} has the name of a column the model "
            f"answers with ({PREDICTED_COLUMN}, {DECISION_COLUMN}) beside one per class: "
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
