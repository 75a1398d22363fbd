"""Groups (patients): one per image, so that no patient sits on both sides of a split.

A group comes from a CSV manifest (``groups.csv`` in the data folder, columns ``file,group``,
``file`` relative to the data folder as in ``ImageSet.files``) or, for DICOM files without a
manifest, from the header's PatientID, or, with neither, from the first folder below the class
folder (``train/benign/patient-17/0001.png``) when the data set has at least
``MIN_FOLDER_GROUPS`` such folders (fewer are taken for another arrangement: years, sites, one
``images/`` folder). An image without a group is its own group. Validation is
carved from train by group (of scikit-learn's ``StratifiedGroupKFold`` folds, or
``GroupShuffleSplit`` draws when there are too few groups, the one closest to the requested
fraction per class; duplicate clusters are carved the same way), and a group found in test
and in train or val is a ``DataError`` unless explicitly allowed.
"""

import hashlib
import json
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

from dataloader.errors import DataError
from dataloader.manifest import FILE_HINT, MAX_LISTED, describe_unmatched, nfc
from dataloader.pseudonyms import patient_pseudonym, shown_file

if TYPE_CHECKING:
    from dataloader.imageset import ImageSet

OWN_GROUP = "file:"  # prefix of the group of an image that has none
FOLDER_SOURCE = "subfolders"  # ``group_source`` of groups from the folders below class folders
# Fewer distinct folder names than this below the class folders are not taken for patients: a
# data set of patients has more, and a carve by two or three years or sites would hold out a
# third of the images or more (the default --val-fraction 0.1 asks ten folds of them).
MIN_FOLDER_GROUPS = 10


def deciding(files: list[str]) -> list[str]:
    """The files whose groups decide where groups come from: the training files (all of them
    where none is in train), so that a load with the test split carves validation as one
    without it."""
    return [f for f in files if f.startswith("train/")] or files


def folder_groups(files: list[str]) -> dict[str, str | None] | None:
    """Each of ``files`` (``split/class/...``, as scanned) to the first folder below its class
    folder (``train/benign/patient-17/a/0001.png``: ``patient-17``, in NFC; None for a file in
    the class folder itself), when the ``deciding`` files lie in at least ``MIN_FOLDER_GROUPS``
    distinct such folders; None otherwise. Folders of one name are one patient in every class
    and split, as a PatientID is."""
    folders = {f: nfc(parts[2]) if len(parts := f.split("/")) > 3 else None for f in files}
    if len({folders[f] for f in deciding(files)} - {None}) < MIN_FOLDER_GROUPS:
        return None
    return folders


def assign(
    files: list[str],
    manifest: dict[str, str] | None,
    header_ids: dict[str, str | None],
    where: str,
    unmatched: list[str] = (),
    class_names: list[str] = (),
) -> np.ndarray | None:
    """The group of each of ``files``: from the manifest, else ``header_ids`` (the DICOM
    PatientIDs, or where no file has one, ``folder_groups``).

    Returns None when there is neither: no manifest and no PatientID in any file of the dataset
    (``header_ids`` covers all splits). With a manifest every file must be in it; without one, a
    file without a PatientID is its own group. ``unmatched`` (the manifest's rows that name no
    image) is named in the error, as the likely reason; files and rows are named as results
    name them (``shown_file`` with ``class_names``).

    Raises:
        DataError: The manifest lacks some of the files.
    """
    if manifest is not None:
        files = [nfc(f) for f in files]  # the manifest's names are NFC (``read_manifest``)
        missing = [f for f in files if f not in manifest]
        if missing:
            fix = f"add a row 'file,group' for every image, {FILE_HINT}"
            if unmatched:  # rows as results name files (FILE_NAMES): a job record shows this
                listed = [shown_file(r, class_names) for r in unmatched[:MAX_LISTED]]
                fix = describe_unmatched(listed, count=len(unmatched))
            first = [shown_file(f, class_names) for f in missing[:MAX_LISTED]]
            raise DataError(
                f"{where} has no group for {len(missing)} image(s) (first: "
                f"{', '.join(first)}); {fix}"
            )
        return np.array([manifest[f] for f in files], dtype=object)
    if not any(header_ids.values()):
        return None
    return np.array([header_ids.get(f) or f"{OWN_GROUP}{f}" for f in files], dtype=object)


CANDIDATE_DRAWS = 10  # carves drawn when there are too few groups for the folds


def _candidates(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> list[np.ndarray]:
    """The validation index sets to choose from: every fold of ``StratifiedGroupKFold`` with
    ``round(1 / fraction)`` folds, or, with fewer groups than folds or no class with as many
    images, ``CANDIDATE_DRAWS`` draws of ``GroupShuffleSplit`` taking ``fraction`` of the groups."""
    folds = max(2, round(1 / fraction))
    placeholder = np.zeros(len(labels))
    if len(set(groups.tolist())) >= folds and np.bincount(labels).max() >= folds:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # a class with fewer images than folds is expected
            warnings.filterwarnings("ignore", "The least populated class", UserWarning)
            return [val for _, val in splitter.split(placeholder, labels, groups)]
    splitter = GroupShuffleSplit(n_splits=CANDIDATE_DRAWS, test_size=fraction, random_state=seed)
    return [val for _, val in splitter.split(placeholder, labels, groups)]


def _distance(
    labels: np.ndarray, units: np.ndarray, val_idx: np.ndarray, fraction: float
) -> tuple[int, int, float]:
    """How far a carve is from ``fraction``: the classes it leaves without a training image,
    for two classes those of two groups or more that it leaves without a validation image (the
    threshold is chosen on both; with more, a large class of few patients would lose half its
    training images for it), then the summed distance of each class's share in val from
    ``fraction``. ``units``: the groups of each class (``np.bincount``'s length)."""
    counts = np.bincount(labels)
    in_val = np.bincount(labels[val_idx], minlength=len(counts))
    present = counts > 0
    emptied = int(np.sum(present & (in_val == counts)))
    missing = 0
    if present.sum() == 2:  # a two-class threshold is chosen on both classes' val images
        missing = int(np.sum((units >= 2) & (in_val == 0)))
    # rounded, so that float noise does not break a tie that the seed should break
    share = round(float(np.abs(in_val[present] / counts[present] - fraction).sum()), 9)
    return emptied, missing, share


def group_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices ``(train, val)`` with about ``fraction`` of each class's images in val and
    no group on both sides: the one carve of groups (patients) and of duplicate clusters.

    Of the candidate carves (``_candidates``) the one that leaves every class training images
    (for two classes, validation images too) where it can and whose per-class shares come
    closest to ``fraction`` is taken (``_distance``), ties broken in an order drawn from
    ``seed``. Taking
    the first fold instead gave val the largest single-class group whatever the seed: scikit-
    learn fills the folds starting with the groups whose class counts vary most. With fewer
    than two groups val is empty.
    """
    if len(set(groups.tolist())) < 2:
        return np.arange(len(labels)), np.empty(0, dtype=np.int64)
    # The same carve is asked for twice at a trainer's start (its splits, then its audit), and
    # scikit-learn's greedy fold filling takes seconds per ten thousand groups: made once.
    key = hashlib.blake2b(np.asarray(labels, dtype=np.int64).tobytes(), digest_size=16)
    # JSON tells 2 from "2" and escapes every character: no two group lists share a text
    key.update(json.dumps(groups.tolist(), default=repr).encode("utf-8", "surrogatepass"))
    key = (key.hexdigest(), float(fraction), int(seed))
    with _CARVES_LOCK:
        if key in _CARVES:
            _CARVES.move_to_end(key)
            return tuple(part.copy() for part in _CARVES[key])
    train_idx, val_idx = _group_split(labels, groups, fraction, seed)
    with _CARVES_LOCK:
        _CARVES[key] = (train_idx.copy(), val_idx.copy())
        while len(_CARVES) > KEPT_CARVES:
            _CARVES.popitem(last=False)
    return train_idx, val_idx


KEPT_CARVES = 4
_CARVES: OrderedDict[tuple[str, float, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
_CARVES_LOCK = threading.Lock()


def _group_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``group_split``, made."""
    candidates = _candidates(labels, groups, fraction, seed)
    order = np.random.default_rng(seed).permutation(len(candidates))
    # the groups of each class, counted once for every candidate's distance
    units = np.array([len(set(groups[labels == c].tolist())) for c in range(labels.max() + 1)])
    best = min(order, key=lambda i: _distance(labels, units, candidates[i], fraction))
    val_idx = np.sort(candidates[best])
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx


MAX_LINKED_GROUPS = 2
"""The most groups one duplicate cluster joins: an image copied into the files of two patients
is one patient's filed twice, while one found with three or more (a blank frame, a template, a
test pattern) marks no patient, and joining through it would make one group of them all."""


def merge_duplicates(groups: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Groups in which the images of a duplicate cluster (``leakage.duplicate_clusters``) share
    one group: groups joined by a duplicate become one, named after its first group in sorted
    order. Groups that no duplicate joins keep their name; a cluster across more than
    ``MAX_LINKED_GROUPS`` groups joins none of them."""
    names, group_ids = np.unique(groups.astype(str), return_inverse=True)
    n_groups = len(names)
    pairs = np.unique(np.stack([clusters, group_ids]), axis=1)  # each (cluster, group) once
    linking = np.bincount(pairs[0], minlength=clusters.max() + 1)[clusters] <= MAX_LINKED_GROUPS
    # Nodes: groups, then clusters; an image links its group to its cluster.
    graph = coo_matrix(
        (np.ones(int(linking.sum())), (group_ids[linking], n_groups + clusters[linking])),
        shape=(n_groups + clusters.max() + 1,) * 2,
    )
    _, component = connected_components(graph, directed=False)
    first_name = {}
    for gid in range(n_groups):  # names are sorted, so the first seen is the smallest
        first_name.setdefault(component[gid], names[gid])
    return np.array([first_name[component[g]] for g in group_ids], dtype=object)


def overlap_report(
    sets: "dict[str, ImageSet]", name: Callable[[str], str] = patient_pseudonym
) -> dict[str, Any] | None:
    """Groups per split and groups shared by each pair of splits; None without groups. Shared
    groups are listed by ``name``: pseudonyms by default, for the statistics that MLflow and the
    dashboard show (a PatientID identifies a patient); the real ones only in a local error."""
    grouped = {name: s for name, s in sets.items() if s is not None and s.groups is not None}
    if not grouped:
        return None
    members = {name: set(s.groups.tolist()) for name, s in grouped.items()}
    overlap = {}
    for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
        if first in members and second in members:
            shared = sorted(members[first] & members[second])
            listed = [name(str(group)) for group in shared[:MAX_LISTED]]
            overlap[f"{first}/{second}"] = {"count": len(shared), "examples": listed}
    return {"per_split": {name: len(m) for name, m in members.items()}, "overlap": overlap}


def ungrouped(sets: "dict[str, ImageSet]") -> dict[str, int]:
    """How many images of each split with groups have none of their own (a DICOM file without
    a PatientID, or an empty one, or a PNG/JPEG beside DICOM files; with ``FOLDER_SOURCE``, a
    file directly in its class folder): each is its own group."""
    return {
        name: int(sum(str(g).startswith(OWN_GROUP) for g in s.groups))
        for name, s in sets.items()
        if s is not None and s.groups is not None
    }


def check_overlap(
    sets: "dict[str, ImageSet]", source: str, allow: bool, folders: bool = False
) -> None:
    """Raise ``DataError`` when a test group is also in train or val, unless ``allow``
    (``folders``: the groups are the folders below the class folders, ``FOLDER_SOURCE``)."""
    report = overlap_report(sets, name=str)  # the operator's own console: real ids to find them
    if allow or report is None:
        return
    for pair in ("train/test", "val/test"):
        shared = report["overlap"].get(pair)
        if shared and shared["count"]:
            named = (
                " (named by the folders below the class folders: if these number the images of "
                "each split anew rather than name patients, give each image its patient in a "
                "groups.csv manifest, file,group)"
                if folders
                else ""
            )
            raise DataError(
                f"{source}: {shared['count']} group(s) (patients) have images in both "
                f"{pair.replace('/', ' and ')} (e.g. {', '.join(shared['examples'])}){named}; "
                "move all images of a patient into one split, or, if this is intended, pass "
                "--allow-group-overlap (Python: allow_group_overlap=True)"
            )
