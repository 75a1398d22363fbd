"""Paired sensitivity and specificity of two two-class runs' served decisions (no Streamlit).

A two-class run is served by a threshold chosen on validation (its ``operating_point.json``):
the evaluator applies it to the test split, records it in ``metrics.json``
(``operating_points.threshold``: the threshold and the positive class) and writes each image's
decision in ``predictions.csv`` (``decision``). A clinician choosing between two such models asks
what that decision does, not what the most probable class does: of the test images with the
finding, how many more does one model catch (sensitivity), and of those without it, how many
more does it clear (specificity).

Both runs decide the same images, so each measure is a paired 2×2 table: the images both decide
right, those only one of them does, and those both get wrong. Only the images decided differently
(discordant) carry the difference; the McNemar mid-p test on them (``paired.mcnemar_mid_p``)
decides the verdict, for the reasons ``dashboard.paired`` gives for accuracy. The 95 % interval
of the difference is Newcombe's square-and-add interval for paired proportions (Newcombe 1998,
method 10; recommended by Fagerland, Lydersen and Laake, 2013): the two runs' Wilson intervals
(``runs.wilson_interval``) combined with the correlation of their decisions. It stays inside
[−1, 1] and keeps its coverage on the few dozen positives a test set often has, where a
bootstrap of a handful of discordant images is too narrow. The interval and the test are two
methods: on a few tables they disagree at the margin (the interval just excludes 0 while the
mid-p is just over 0.05), and the verdict then says so.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.paired import ALPHA, classes_of, mcnemar_mid_p, p_text
from runs import schemas, threshold_labels, wilson_interval

MEASURES = ("sensitivity", "specificity")


def paired_interval(
    both: int, only_first: int, only_second: int, neither: int
) -> tuple[float, float]:
    """The 95 % Newcombe square-and-add interval of ``p_second − p_first``, two proportions of
    the same ``n`` items (``both`` right by both, ``only_first`` by the first alone...).

    The correlation ψ of the two is Newcombe's, continuity corrected: 0 while
    ``both·neither − only_first·only_second`` lies in [0, n/2] (as Fagerland et al. compute it).

    Raises:
        ValueError: No items (``n`` is 0): the proportions are undefined.
    """
    n = both + only_first + only_second + neither
    first, second = both + only_first, both + only_second
    (l1, u1), (l2, u2) = wilson_interval(first, n), wilson_interval(second, n)
    p1, p2 = first / n, second / n
    margins = first * (n - first) * second * (n - second)
    psi = 0.0
    if margins:
        cross = both * neither - only_first * only_second
        if cross > n / 2:
            psi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            psi = cross / math.sqrt(margins)
    down = math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1)))
    up = math.sqrt(max(0.0, (u2 - p2) ** 2 + (p1 - l1) ** 2 - 2 * psi * (u2 - p2) * (p1 - l1)))
    return max(-1.0, p2 - p1 - down), min(1.0, p2 - p1 + up)


@dataclass(frozen=True)
class PairedRate:
    """One measure (``sensitivity`` on the positive images, ``specificity`` on the others) of
    two runs' served decisions on the same ``images``: ``other − this``."""

    measure: str
    images: int
    both: int
    """Images both runs decide right (``only_this``: right by this run alone, ...)."""
    only_this: int
    only_other: int

    @property
    def neither(self) -> int:
        return self.images - self.both - self.only_this - self.only_other

    @property
    def this_rate(self) -> float | None:
        return (self.both + self.only_this) / self.images if self.images else None

    @property
    def other_rate(self) -> float | None:
        return (self.both + self.only_other) / self.images if self.images else None

    @property
    def value(self) -> float | None:
        """``other − this``; None without images (no positive, or no negative, test image)."""
        return (self.only_other - self.only_this) / self.images if self.images else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % Newcombe interval of ``value`` (``paired_interval``); None without images."""
        if not self.images:
            return None
        return paired_interval(self.both, self.only_this, self.only_other, self.neither)

    @property
    def p_value(self) -> float | None:
        """The McNemar mid-p test's p-value; None without images."""
        return mcnemar_mid_p(self.only_this, self.only_other) if self.images else None

    def better(self) -> int | None:
        """0 when ``this`` decides better by this measure, 1 when ``other`` does, None when the
        McNemar mid-p test finds no clear difference (or there are no images)."""
        p = self.p_value
        if p is None or p >= ALPHA:
            return None
        return 1 if self.only_other > self.only_this else 0

    def verdict(self, this: str, other: str) -> str:
        """Which run's decision is more sensitive (specific), or that these images cannot tell."""
        if not self.images:
            kind = "with" if self.measure == "sensitivity" else "without"
            return f"undefined: no test image {kind} the finding"
        differ = (
            f"{self.only_this} right only by {this}, {self.only_other} only by {other}; "
            f"McNemar {p_text(self.p_value, 'mid-p')}"
        )
        better = self.better()
        low, high = self.interval
        if (low > 0 or high < 0) != (better is not None):  # the two methods differ at the margin
            holds = "holds 0" if better is not None else "excludes 0"
            differ += f"; the interval {holds}, but the test decides"
        if better is None:
            return f"no clear difference on these images ({differ})"
        more = "more sensitive" if self.measure == "sensitivity" else "more specific"
        return f"{(this, other)[better]} is {more} ({differ})"


def threshold_of(report: schemas.EvaluationReport | None) -> schemas.ThresholdPoint | None:
    """The decision threshold (and positive class) the evaluation applied; None where it
    applied none (more than two classes, no threshold chosen, or an evaluation before them)."""
    points = getattr(report, "operating_points", None)
    return points.threshold if points is not None else None


def why_not_served(
    names: tuple[str, str],
    points: tuple[schemas.ThresholdPoint | None, schemas.ThresholdPoint | None],
    chose: tuple[bool, bool],
) -> str | None:
    """Why two two-class runs' served decisions are not paired (None: they are): a run whose
    evaluation applied no threshold (``chose``: its trainer logged one, so an evaluation made
    again would), or two positive classes."""
    for name, point, chosen in zip(names, points, chose, strict=True):
        if point is None and chosen:
            return (
                f"the evaluation of {name} applied no decision threshold, though its trainer "
                "chose one (an evaluation made before thresholds were applied): evaluate it again"
            )
        if point is None:
            return (
                f"{name} has no decision threshold (its trainer chose none, as with "
                "--target-sensitivity 0): it is served by its most probable class, which the "
                "accuracy above compares"
            )
    this, other = (p.positive_class for p in points if p is not None)  # both have one here
    if this != other:
        return (
            f"{names[0]} takes {this!r} as its positive class and {names[1]} {other!r}: their "
            "sensitivities are of different classes"
        )
    return None


def decided_positive(frame: pd.DataFrame, point: schemas.ThresholdPoint) -> np.ndarray:
    """Whether the run's served rule decides each image positive: ``predictions.csv``'s
    ``decision`` where the evaluation wrote it, else the threshold on the positive class's
    probability (``runs.threshold_labels``, the served model's own rule)."""
    positive = point.positive_class
    if "decision" in frame.columns:
        return frame["decision"].astype(str).to_numpy() == positive
    classes = classes_of(frame)
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy(float)
    index = classes.index(positive)
    return threshold_labels(probs, index, point.threshold) == index


def served_rates(
    this: pd.DataFrame,
    other: pd.DataFrame,
    points: tuple[schemas.ThresholdPoint, schemas.ThresholdPoint],
) -> list[PairedRate]:
    """Sensitivity and specificity of each run's decision at its own threshold (``points``, of
    one positive class: ``why_not_served`` is None), paired on the same images (``this`` and
    ``other`` are ``predictions.csv`` tables of the same rows: ``paired.why_not_paired`` is
    None)."""
    truth = this["true_label"].astype(str).to_numpy() == points[0].positive_class
    right = [
        decided_positive(frame, point) == truth
        for frame, point in zip((this, other), points, strict=True)
    ]
    rates = []
    for measure, members in zip(MEASURES, (truth, ~truth), strict=True):
        mine, theirs = right[0][members], right[1][members]
        rates.append(
            PairedRate(
                measure,
                images=int(members.sum()),
                both=int((mine & theirs).sum()),
                only_this=int((mine & ~theirs).sum()),
                only_other=int((theirs & ~mine).sum()),
            )
        )
    return rates
