"""Paired comparison of two evaluated runs (no Streamlit): is one model really better?

Two runs evaluated on the same test images differ in macro AUC and accuracy by some amount; a
person choosing between them needs to know whether that difference is larger than the noise of
a test set of this size. Both runs' ``predictions.csv`` are resampled with the same bootstrap
indices (a paired bootstrap, percentile intervals), which keeps the correlation between two
models scored on the same images; intervals of the difference are much narrower than the two
runs' own intervals suggest. The resampling is stratified by true class (as pROC does for AUC):
every resample keeps each class's count, so a rare class (5 positives among 10,000 images) never
drops out of a resample and leaves its AUC undefined; ``scipy.stats.bootstrap`` has no strata.
Accuracy's verdict also needs the McNemar test (``mcnemar_mid_p`` on the images the two runs
get differently): the bootstrap interval of a difference carried by a handful of images (4
against 0) rarely holds 0, but 4 images cannot tell two models apart (mid-p = 0.0625).

For accuracy the McNemar test decides, and the bootstrap interval is shown beside it though it
may exclude 0 (the verdict then says so). Why the test: given the images the two runs get
differently (b + c of them), only those carry the difference, and under "equally accurate" each
is as likely to favour either run: the count favouring one is Binomial(b + c, 1/2), exactly,
whatever the test set's size. The percentile bootstrap of the difference resamples those few
discordant images too, and with b + c small its distribution is coarse and too narrow (4
against 0 is resampled as 4 against 0 most of the time: it has no way to put mass on the other
run winning), so its interval under-covers and would call a handful of images a difference.
The interval stays as the size of the difference (how large it might be), not as the test of
whether there is one. Why mid-p: the exact test on that binomial is conservative when few
images differ (its steps are coarse, and its error rate stays well under 5 %, so it misses real
differences); the mid-p test counts half the probability of the count observed, is nearly as
powerful as the asymptotic test, and exceeded 5 % in none of the 9,595 scenarios of Fagerland,
Lydersen and Laake ("The McNemar test for binary matched-pairs data: mid-p and asymptotic are
better than exact conditional", BMC Med Res Methodol 2013;13:91), who recommend it.
Runs evaluated on other images (another data folder, a changed test split) are not compared,
and said so.
"""

import io
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import binom

from runs import CONFIDENCE, ResampledAuc, contract, macro_auc, resample_counts

N_RESAMPLES = 2000
SEED = 0
BATCH = 100  # resamples computed at once: memory is BATCH × images, whatever N_RESAMPLES
KEYS = ("index", "file", "true_label")  # what identifies a test image in predictions.csv
ALPHA = round(1 - CONFIDENCE, 12)  # 0.05, not 1 − 0.95 in binary floating point (0.05000…04)


def mcnemar_mid_p(only_first: int, only_second: int) -> float:
    """The McNemar mid-p test's two-sided p-value on the discordant pairs (1 when none).

    Under "equally good" the smaller count k is Binomial(n, 1/2), n = ``only_first +
    only_second``: the exact conditional p-value 2·P(X ≤ k) less the probability of the count
    observed, 2·[P(X ≤ k) − ½·P(X = k)]; with equal counts 1 − ½·P(X = k) (Fagerland, Lydersen
    and Laake 2013, and their supplement "How to calculate the McNemar mid-p test")."""
    n, smaller = only_first + only_second, min(only_first, only_second)
    if n == 0:
        return 1.0
    observed = binom.pmf(smaller, n, 0.5)
    if only_first == only_second:
        return float(1 - 0.5 * observed)
    return float(2 * binom.cdf(smaller, n, 0.5) - observed)


def p_text(p: float, name: str = "p") -> str:
    """``p = 0.0498``, ``p = 0.0501``, ``p < 0.001``: three significant digits, more where
    fewer would read 0.05 (or cross it) for a p-value on either side of it."""
    if p < 0.001:
        return f"{name} < 0.001"
    for digits in range(3, 18):
        text = f"{p:.{digits}g}"
        if (float(text) < ALPHA) == (p < ALPHA) and (float(text) != ALPHA or p == ALPHA):
            break
    return f"{name} = {text}"


@dataclass(frozen=True)
class Difference:
    """``other − this`` of one metric, with the paired-bootstrap interval (None: undefined)."""

    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    only_this: int | None = None
    """Accuracy: images only ``this`` classifies correctly (and ``only_other``)."""
    only_other: int | None = None

    @property
    def p_value(self) -> float | None:
        """Accuracy: the McNemar mid-p test's two-sided p-value; None for other metrics."""
        if self.only_this is None or self.only_other is None:
            return None
        return mcnemar_mid_p(self.only_this, self.only_other)

    def better(self) -> int | None:
        """0 when ``this`` is better, 1 when ``other`` is, None when this test set cannot tell
        (or the difference is undefined)."""
        if self.value is None or self.ci_low is None or self.ci_high is None:
            return None
        p = self.p_value
        if p is not None and p >= ALPHA:
            return None
        if self.ci_low > 0:
            return 1
        return 0 if self.ci_high < 0 else None

    def verdict(self, this: str, other: str) -> str:
        """Which run is better by this metric, or that the test set cannot tell."""
        if self.value is None:
            return "undefined on these images"
        if self.ci_low is None or self.ci_high is None:
            return "too few test images for an interval"
        p = self.p_value
        if p is not None and p >= ALPHA:
            excludes = self.ci_low > 0 or self.ci_high < 0
            return (
                f"no clear difference on these images (they disagree on "
                f"{self.only_this + self.only_other}: {self.only_this} right only by {this}, "
                f"{self.only_other} only by {other}; McNemar {p_text(p, 'mid-p')}, which "
                "decides accuracy"
                + (
                    "; the bootstrap interval excludes 0 but is too narrow when so few "
                    "images differ"
                    if excludes
                    else ""
                )
                + ")"
            )
        better = self.better()
        if better is None:
            return "no clear difference on these images"
        return f"{(this, other)[better]} is better"


def read_predictions(raw: bytes) -> pd.DataFrame:
    """An evaluation's ``predictions.csv`` with labels and files as written: class "01" stays
    "01" (its column is ``prob_01``), a class named "NA" is not read as missing, and one named
    "=x" (written "'=x", ``runs.contract.spreadsheet_safe``) is "=x" again."""
    text = {column: str for column in TEXT_COLUMNS}
    return names_as_written(pd.read_csv(io.BytesIO(raw), dtype=text, keep_default_na=False))


TEXT_COLUMNS = ("file", "true_label", "predicted_label", "decision")


def names_as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """An evaluation CSV's names as written: ``'=x`` of a class or file named ``=x`` is ``=x``
    again (``runs.contract.spreadsheet_safe``); ``frame`` is changed in place and returned."""
    for column in set(TEXT_COLUMNS) & set(frame.columns):
        frame[column] = frame[column].map(
            lambda cell: contract.as_written(cell) if isinstance(cell, str) else cell
        )
    return frame


def classes_of(frame: pd.DataFrame) -> list[str]:
    """The classes a ``predictions.csv`` lists (its ``prob_<class>`` columns), in order."""
    return [c[len("prob_") :] for c in frame.columns if c.startswith("prob_")]


def why_not_paired(this: pd.DataFrame, other: pd.DataFrame) -> str | None:
    """None when both tables hold predictions for the same images, labels and classes, in the
    same order; otherwise why the runs cannot be compared image by image."""
    missing = [k for k in KEYS if k not in this.columns or k not in other.columns]
    if missing or not classes_of(this) or not classes_of(other):
        return "its predictions.csv lacks the columns " + ", ".join(missing or ["prob_<class>"])
    if classes_of(this) != classes_of(other):
        return f"it predicts other classes ({', '.join(classes_of(other))})"
    if len(this) != len(other):
        return f"it was evaluated on {len(other)} test images, this run on {len(this)}"
    a, b = this[list(KEYS)].astype(str), other[list(KEYS)].astype(str)
    differ = int((a.to_numpy() != b.to_numpy()).any(axis=1).sum())
    if differ:
        return f"{differ} of its {len(other)} test images or labels differ from this run's"
    return None


def why_other_data(this: object | None, other: object | None) -> str | None:
    """Why two evaluations (``runs.schemas.EvaluationReport``; None: unknown) were not made on
    the same test files, though their predictions.csv may match row by row (another folder
    with the same file names): other test data (``dataset_hash``: names and contents of the
    files), or, where one lacks that, another folder (``data_dir``). None: the same, or
    nothing is known to differ."""
    hashes = [getattr(r, "dataset_hash", None) for r in (this, other)]
    folders = [getattr(r, "data_dir", None) for r in (this, other)]
    if all(hashes):
        if hashes[0] == hashes[1]:
            return None
        if folders[0] == folders[1]:
            return (
                f"its test files in {folders[1]} changed between the two evaluations (names "
                "or contents; or one evaluation is older than identifying test data by content, "
                "which mlpipeline does since December 2026): evaluate both runs again"
            )
    if all(folders) and folders[0] != folders[1]:
        return f"it was evaluated on the test split of {folders[1]}, this run on {folders[0]}"
    return None


class _Statistic:
    """Differences (other − this) of macro AUC and accuracy on resampled image indices; the
    accuracy of the most probable class (argmax, as ``eval_accuracy``), not of the decision a
    two-class model is served with at its threshold (``predictions.csv``'s ``decision``)."""

    names = ("roc_auc_macro", "accuracy")

    def __init__(self, this: pd.DataFrame, other: pd.DataFrame) -> None:
        classes = classes_of(this)
        y = this["true_label"].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
        self.y = y
        self.p = [f[[f"prob_{c}" for c in classes]].to_numpy(float) for f in (this, other)]
        # Two classes: the AUC of one class is the AUC of the other; count it once.
        auc_classes = [1] if len(classes) == 2 else list(range(len(classes)))
        self.aucs = [[ResampledAuc(p[:, c], y == c) for c in auc_classes] for p in self.p]

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        """The differences (rows) for each resample of ``idx`` (B×N: columns; N: one column
        dropped, a vector)."""
        many = np.atleast_2d(np.asarray(idx, dtype=np.int64))
        counts = resample_counts(many, len(self.y))
        correct = [(p.argmax(1) == self.y)[many] for p in self.p]
        found = np.stack(
            [
                macro_auc(self.aucs[1], counts) - macro_auc(self.aucs[0], counts),
                correct[1].mean(-1) - correct[0].mean(-1),
            ]
        )
        return found if np.ndim(idx) > 1 else found[:, 0]


def _stratified_indices(y: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` resamples (count × N indices), each drawing every class's images with
    replacement from that class alone."""
    parts = [
        members[rng.integers(0, len(members), size=(count, len(members)))]
        for members in (np.flatnonzero(y == c) for c in np.unique(y))
    ]
    return np.concatenate(parts, axis=1)


def paired_differences(
    this: pd.DataFrame, other: pd.DataFrame, n_resamples: int = N_RESAMPLES
) -> list[Difference]:
    """Macro AUC and accuracy of ``other`` minus ``this`` with paired, class-stratified
    bootstrap 95 % intervals.

    Both are ``predictions.csv`` tables of the same test images (``why_not_paired`` is None).
    A value is None where it is undefined (AUC of a test set of one class), an interval where
    there are fewer than two images.
    """
    stat = _Statistic(this, other)
    n = len(stat.y)
    values = stat(np.arange(n))
    lows = highs = [None] * len(values)
    if n >= 2:
        rng = np.random.default_rng(SEED)
        draws = [
            stat(_stratified_indices(stat.y, min(BATCH, n_resamples - start), rng))
            for start in range(0, n_resamples, BATCH)
        ]
        tail = (1 - CONFIDENCE) / 2 * 100
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an undefined AUC: all NaN
            lows, highs = np.nanpercentile(np.concatenate(draws, axis=1), [tail, 100 - tail], 1)

    def num(x) -> float | None:
        return None if x is None or not np.isfinite(x) else float(x)

    auc, accuracy = (
        Difference(name, num(v), num(lo), num(hi))
        for name, v, lo, hi in zip(stat.names, values, lows, highs, strict=True)
    )
    right = [p.argmax(1) == stat.y for p in stat.p]
    only_this, only_other = int((right[0] & ~right[1]).sum()), int((right[1] & ~right[0]).sum())
    return [auc, replace(accuracy, only_this=only_this, only_other=only_other)]
