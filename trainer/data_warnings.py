"""What the trainer says about its data before training: one line per problem found in the
dataset statistics (skipped files, the group manifest, images without a patient, the test
split's audit, classes missing from a split, leakage across splits), printed once as warnings,
and the test-overlap tag the run records (``trainer.data`` loads the data)."""

import json
import sys
from typing import Any

from dataloader import FOLDER_SOURCE, describe_skipped, describe_unmatched, label_conflict_note
from runs import contract, schemas

AUDIT_NOT_DONE = "not done: "
NO_TEST = "no test split"  # the statistics' test_audit of a folder without test/


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
    if stats["groups"].get("source") == FOLDER_SOURCE:
        why, fix = "directly in their class folder, not in a patient's folder below it", "move them"
    else:
        why, fix = "no DICOM PatientID, or an empty one", "give them their PatientID"
    return (
        f"{sum(without.values())} image(s) have no patient ({why}: "
        f"{listed}) and count as a patient each, while the others have one, so one patient's "
        f"images among them may sit on both sides of a split; {fix}, or give "
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


FEW_TRAINING_IMAGES = 10
"""A class with fewer training images than this is named in a warning."""


def few_images_warning(stats: dict[str, Any]) -> str | None:
    """A line naming the classes with fewer than ``FEW_TRAINING_IMAGES`` training images (but
    some): the model can hardly learn them, and such a class is often a folder that is no
    class at all (thumbnails, an export's extra folder)."""
    counts = stats.get("counts", {}).get("train") or {}  # also its "total"
    few = {c: n for c in stats["class_names"] if 0 < (n := counts.get(c, 0)) < FEW_TRAINING_IMAGES}
    if not few:
        return None
    listed = ", ".join(f"{c!r} ({n})" for c, n in few.items())
    return (
        f"the training split has fewer than {FEW_TRAINING_IMAGES} images of {listed}: the model "
        "can hardly learn such a class and its figures will be unreliable; add images, or check "
        "that the folder is a class at all (not thumbnails or an export's extra folder)"
    )


def split_warnings(stats: dict[str, Any]) -> list[str]:
    """Lines on splits that lack classes: validation (its AUC is n/a, and what it chooses cannot
    see them) and test (the evaluator's figures of them are n/a), or no test split at all; and
    on classes with few training images (``few_images_warning``)."""
    lines = [few] if (few := few_images_warning(stats)) else []
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
    validation-carve, bit-depth, split and leakage warnings there are (once: the trainer is a
    command, its stderr is its log); return the leakage one (the run records it)."""
    leakage = leakage_warning(stats)
    skipped = describe_skipped(stats.get("skipped") or [], contract.DATASET_STATS_JSON)
    conflicts = label_conflict_note(stats.get("leakage"), contract.DATASET_STATS_JSON)
    carve = (stats.get("val_carve") or {}).get("note")  # a carve far from --val-fraction
    depths = (stats.get("bit_depths") or {}).get("note")  # 8-bit and 16-bit images mixed
    messages = [numbered_classes_warning(stats, named), skipped, manifest_warning(stats)]
    messages += [ungrouped_warning(stats), audit_warning(stats)]
    messages += [conflicts, carve, depths]
    for message in [*messages, *split_warnings(stats), leakage]:
        if message:
            print(f"warning: {message}", file=sys.stderr, flush=True)
    return leakage
