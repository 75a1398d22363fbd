"""Whether a run's test split shares images or patients with the data it was trained on.

The one rule of the leaderboard, top-K, the Choose model tab and the CLI: a run whose test
images have an exact or near duplicate in its training or validation split (the split pairs
train/test and val/test), or whose test split holds images of patients (groups) that train or
val holds too, is scored partly on what it learnt from: its test figures are optimistic and must
not win a ranking, and choosing it needs a confirmation. Duplicates or patients shared by train
and val only do not inflate the test figures and do not count here (the page still lists them
as a data warning: ``provenance.dataset_warnings``).

Pages of runs read it from the runs' tags, which every run carries in its search result (the
leaderboard and top-K read no ``dataset_stats.json`` per run): first the trainer's JSON tag
``pipeline.test_overlap`` (``{"exact": n, "near": n, "groups": n}``,
``trainer.data_warnings.overlap_tag``); for runs trained before it, the words of its one-line
tag ``pipeline.leakage_warning`` (``trainer.data_warnings.leakage_warning``, e.g. ``possible
leakage: exact duplicate images across splits (3 train/test, 2 train/val); groups in two splits
(1 val/test) (...)``), logged whenever ``dataset_stats.json`` reports a duplicate or a shared
group. A tag that cannot be read is not taken for a clean split: the run's leakage is unknown,
marked and not ranked. (The ``leakage_exact``/``leakage_near`` params are totals over all split
pairs, train/val included, so they cannot tell.)

Choosing a run reads its ``dataset_stats.json`` (``leakage_caveat``, ``run_leakage``) by the same
rule (``stats_overlap``); the choice keeps the caveat. As on the leaderboard, the rule concerns
figures of the run's own test split: a run whose current evaluation is of other test data
(``of_other_data``) has no leakage caveat (its own split is not what its figures measure); that
evaluation's caveat says the folder was not checked against the training data
(``handoff.caveats_of``).
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from runs import contract, load_json_artifact, schemas

LEAK = "⚠"
# The words tag, as trainer.data_warnings.leakage_warning writes it: a prefix, parts joined by
# "; ", a suffix; each part a kind and its ``(N first/second, ...)``.
_PREFIX, _SUFFIX = "possible leakage: ", " (dataset_stats.json lists examples)"
_PART = re.compile(
    r"(exact duplicate images across splits|near duplicate images across splits|groups in two "
    r"splits) \((\d+ \w+/\w+(?:, \d+ \w+/\w+)*)\)"
)
_PAIR = re.compile(r"(\d+) (\w+)/(\w+)")
_FIELDS = ("exact", "near", "groups")


@dataclass(frozen=True)
class SplitOverlap:
    """What the test split shares with train and val: test images with an exact or a near
    duplicate there (counted per split pair, so an image in both is counted twice), and groups
    (patients) with images in both. ``unknown``: why nothing is known (the run's leakage tag
    could not be read, or the trainer did not check its test split): taken as leaked, marked
    and never ranked."""

    exact: int = 0
    near: int = 0
    groups: int = 0
    unknown: str = ""

    def __bool__(self) -> bool:
        return bool(self.exact or self.near or self.groups or self.unknown)

    @property
    def why(self) -> str:
        """``test split overlaps train/val: 3 exact and 1 near duplicate images, 2 patients``,
        or, ``unknown``, that the warning could not be read."""
        if self.unknown:
            return f"leakage unknown: {self.unknown}"
        images = " and ".join(
            f"{n} {kind}" for kind, n in (("exact", self.exact), ("near", self.near)) if n
        )
        parts = [f"{images} duplicate images"] if images else []
        if self.groups:
            parts.append(f"{self.groups} patients (groups)")
        return "test split overlaps train/val: " + ", ".join(parts)


UNKNOWN = SplitOverlap(
    unknown="the trainer's leakage tag could not be read (a wording or format this dashboard "
    "does not know); see the run's dataset_stats.json"
)
UNCHECKED = SplitOverlap(
    unknown="the trainer did not check the test split against train and val (it had none, or "
    "it could not be read when the run was trained)"
)


def _on_test(pair: str) -> bool:
    return "test" in pair.split("/")


def _from_json(text: str) -> SplitOverlap:
    """``pipeline.test_overlap``; ``UNKNOWN`` unless it holds a count ≥ 0 for each field."""
    try:
        found = json.loads(text)
    except ValueError:
        return UNKNOWN
    if not isinstance(found, dict):
        return UNKNOWN
    if found.get("audited") is False:
        return UNCHECKED
    counts = [found.get(name) for name in _FIELDS]
    # (bool is an int to Python: a true/false in the tag is not a count)
    if not all(type(n) is int and n >= 0 for n in counts):
        return UNKNOWN
    return SplitOverlap(*counts)


def _from_words(text: str) -> SplitOverlap:
    """``pipeline.leakage_warning``; ``UNKNOWN`` unless every part of it is read."""
    if not text.startswith(_PREFIX):
        return UNKNOWN
    found = dict.fromkeys(_FIELDS, 0)
    for part in text.removeprefix(_PREFIX).removesuffix(_SUFFIX).split("; "):
        match = _PART.fullmatch(part)
        if match is None:  # a wording this reader does not know: not a clean split
            return UNKNOWN
        kind = match.group(1).split()[0]  # exact, near or groups: a field
        for n, first, second in _PAIR.findall(match.group(2)):
            if _on_test(f"{first}/{second}"):
                found[kind] += int(n)
    return SplitOverlap(**found)


def overlap(tags: dict[str, str]) -> SplitOverlap:
    """What the run's test split shares with its training and validation splits, from its tags:
    the JSON tag, else the words (an empty ``SplitOverlap`` without either: the trainer found
    nothing, or the run is not the trainer's; ``UNKNOWN`` when the one there cannot be read)."""
    if structured := tags.get(contract.TEST_OVERLAP_TAG):
        return _from_json(structured)
    if words := tags.get(contract.LEAKAGE_TAG):
        return _from_words(words)
    return SplitOverlap()


def stats_overlap(stats: schemas.DatasetStats) -> SplitOverlap:
    """What the test split shares with train and val by ``dataset_stats.json`` (the figures the
    trainer's tags carry, ``overlap``)."""
    return SplitOverlap(**stats.overlap_counts(with_test=True))


def train_val_overlap(stats: schemas.DatasetStats) -> SplitOverlap:
    """Duplicates and patients shared by train and val only (not a leak into the test figures:
    validation chose the epoch, so its figures may be optimistic)."""
    return SplitOverlap(**stats.overlap_counts(with_test=False))


def describe(found: SplitOverlap, splits: str) -> str:
    """``5 images have an exact or near duplicate across the test split and train/val and 2
    patients (groups) have images in both`` (``splits``: which, in words)."""
    parts = []
    if images := found.exact + found.near:
        parts.append(f"{images} images have an exact or near duplicate across {splits}")
    if found.groups:
        parts.append(f"{found.groups} patients (groups) have images across {splits}")
    return " and ".join(parts)


def leakage_caveat(
    stats: schemas.DatasetStats | None,
    tags: Mapping[str, str] | None = None,
    report: schemas.EvaluationReport | None = None,
) -> str | None:
    """The caveat kept with a choice of a run whose ``dataset_stats.json`` finds its test split
    sharing images (exact or near duplicates) or patients with its train or val split
    (``stats_overlap``: the rule of the leaderboard and top-K); None without such an overlap
    (duplicates between train and val only are not one). The run's ``tags`` decide, as they do
    the leaderboard's ⚠, where the statistics cannot: when there are none, and when the trainer
    did not check the test split (``UNCHECKED``: the statistics hold no test pair). None, too,
    when the current evaluation (``report``, its ``own_data`` settled) is of other test data
    (``of_other_data``): its figures are not of the split that leaks."""
    if report is not None and of_other_data(
        tags or {}, report.own_data, report.dataset_hash, report.data_changed
    ):
        return None
    tagged = overlap(dict(tags or {}))
    if stats is None or tagged == UNCHECKED:
        return f"possible leakage: {tagged.why}" if tagged else None
    found = stats_overlap(stats)
    if not found:
        return None
    where = describe(found, "its test split and its train/val splits")
    return f"possible leakage: {where} (dataset_stats.json), so its test figures may be optimistic"


def of_other_data(
    tags: Mapping[str, str],
    own_data: bool | None,
    dataset_hash: str | None,
    data_changed: str | None = None,
) -> bool:
    """Whether an evaluation's figures (of a run with ``tags``) are of other test images than
    the run's own test split, as far as can be told: another data folder (``own_data`` False,
    and not the run's own with its split changed since, ``data_changed``, which may still hold
    the copies), whose test images are not the very files of the run's split under another path
    (their ``dataset_hash`` is not the run's ``TEST_DATA_TAG``). False where either hash is
    unknown (an evaluation or a run from before them). The leaderboard's rule too."""
    recorded = tags.get(contract.TEST_DATA_TAG)
    return (
        own_data is False
        and not data_changed
        and bool(dataset_hash and recorded)
        and dataset_hash != recorded
    )


def not_its_split(tags: Mapping[str, str], report: schemas.EvaluationReport | None) -> bool:
    """Whether the evaluation ``report`` (its ``own_data`` settled) is of another folder than
    the run's own (``own_data`` False, its own split not merely changed since: the caveat that
    nothing checked its images against the training data, ``handoff.caveats_of``), and not of
    the very test files of the run's split under another path (the same ``dataset_hash`` as
    the run's ``TEST_DATA_TAG``): the warnings of the run's own data set (duplicates of its test
    split, labels in conflict) are then not of the images its figures measure."""
    if report is None or report.own_data is not False or report.data_changed:
        return False
    recorded = tags.get(contract.TEST_DATA_TAG)
    return not (report.dataset_hash and recorded and report.dataset_hash == recorded)


def run_leakage(
    client: MlflowClient, run: Run, report: schemas.EvaluationReport | None = None
) -> str | None:
    """``leakage_caveat`` of the run's ``dataset_stats.json`` (one download; None when it has
    none, or one this pipeline did not write) and current evaluation (``report``).
    ``ServiceUnavailable`` when MLflow is down: an outage is not a clean dataset. Without
    statistics, the run's tags decide."""
    raw = load_json_artifact(client, run.info.run_id, contract.DATASET_STATS_JSON)
    try:
        stats = None if raw is None else schemas.DatasetStats.model_validate(raw)
    except ValidationError:
        stats = None
    return leakage_caveat(stats, run.data.tags, report)
