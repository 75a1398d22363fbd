"""Whether a run's test split shares images or patients with the data it was trained on.

A run whose test images (or their near copies, or other images of the same patients) are also in
its training or validation split is scored partly on what it learnt from: its test figures are
optimistic and must not win a ranking. Duplicates between train and val only do not inflate the
test figures and do not count here (the trainer's tag lists them too).

Read from the trainer's one-line tag ``pipeline.leakage_warning`` (``trainer.data.leakage_warning``,
e.g. ``possible leakage: exact duplicate images across splits (3 train/test, 2 train/val);
groups in two splits (1 val/test) (...)``), which every run of a page carries in its search
result: the leaderboard and top-K read no ``dataset_stats.json`` per run. The trainer logs the tag
whenever ``dataset_stats.json`` reports a duplicate or a shared group (since the leakage check
exists; the ``leakage_exact``/``leakage_near`` params are totals over all split pairs, train/val
included, so they cannot tell).

Choosing such a run (``dashboard.choose``, the Choose model tab) needs a confirmation and the
choice keeps the warning: ``leakage_caveat``, from ``dataset_stats.json``, where duplicates
between any two splits count (as the page's data warning counts them).
"""

import re
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from dashboard.provenance import leakage_rows
from runs import contract, load_json_artifact

LEAK = "⚠"
# One part of the tag per kind: its name, then ``(N first/second, ...)``.
_PART = re.compile(r"(exact duplicate images|near duplicate images|groups)[^()]*\(([^)]*)\)")
_TEST_PAIR = re.compile(r"(\d+) (?:train|val)/test\b")
_KIND = {"exact duplicate images": "exact", "near duplicate images": "near", "groups": "groups"}


@dataclass(frozen=True)
class SplitOverlap:
    """What the test split shares with train and val: test images with an exact or a near
    duplicate there (counted per split pair, so an image in both is counted twice), and groups
    (patients) with images in both."""

    exact: int = 0
    near: int = 0
    groups: int = 0

    def __bool__(self) -> bool:
        return bool(self.exact or self.near or self.groups)

    @property
    def why(self) -> str:
        """``test split overlaps train/val: 3 exact and 1 near duplicate images, 2 patients``."""
        images = " and ".join(
            f"{n} {kind}" for kind, n in (("exact", self.exact), ("near", self.near)) if n
        )
        parts = [f"{images} duplicate images"] if images else []
        if self.groups:
            parts.append(f"{self.groups} patients (groups)")
        return "test split overlaps train/val: " + ", ".join(parts)


def overlap(tags: dict[str, str]) -> SplitOverlap:
    """What the run's test split shares with its training and validation splits, from its tags
    (an empty ``SplitOverlap`` when the trainer found nothing, or the run is not the trainer's)."""
    found = dict.fromkeys(_KIND.values(), 0)
    for kind, pairs in _PART.findall(tags.get(contract.LEAKAGE_TAG) or ""):
        found[_KIND[kind]] += sum(int(n) for n in _TEST_PAIR.findall(pairs))
    return SplitOverlap(**found)


def leakage_caveat(stats: contract.DatasetStats | None) -> str | None:
    """The caveat kept with a choice of a run whose ``dataset_stats.json`` found exact or near
    duplicates across splits (counted as ``provenance.dataset_warnings`` counts them, so the page
    and the record agree); None without statistics, a leakage check or duplicates."""
    if stats is None or not stats.leakage:
        return None
    duplicated = int(leakage_rows({"leakage": stats.leakage})["images"].sum())
    if not duplicated:
        return None
    return (
        f"possible leakage: {duplicated} images of its dataset have an exact or near duplicate "
        "in another split (dataset_stats.json), so its test figures may be optimistic"
    )


def run_leakage(client: MlflowClient, run: Run) -> str | None:
    """``leakage_caveat`` of the run's ``dataset_stats.json`` (one download; None when it has
    none, or one this pipeline did not write). ``ServiceUnavailable`` when MLflow is down: an
    outage is not a clean dataset."""
    raw = load_json_artifact(client, run.info.run_id, contract.DATASET_STATS_JSON)
    try:
        stats = None if raw is None else contract.DatasetStats.model_validate(raw)
    except ValidationError:
        return None
    return leakage_caveat(stats)
