"""How the evaluator's figures are named in MLflow, and which way a metric is better.

One scheme, written by the evaluator and read by the dashboard, the model hand-off and the demo:

* ``eval_<name>``: an overall figure of the test split (``eval_accuracy``, ``eval_ece``);
* ``eval_<name>_<class>``: a per-class one (``eval_sensitivity_melanoma``), the class made safe
  for a key by ``key_part`` (told apart from the run's other classes);
* ``eval_thr_<name>_<class>``: a two-class run's figure at its validation-chosen threshold;
* ``<key>_ci_low`` / ``<key>_ci_high``: the 95 % interval bounds of any of these;
* ``eval_ood_rate`` (with its bounds) and ``eval_ood_expected_rate``: of a model with the
  out-of-distribution check, the share of test images it flags and the share it expects
  (``OOD_FIGURES``).
"""

import functools
import hashlib
import math
import re
import unicodedata
from collections.abc import Collection, Mapping

EVAL_PREFIX = "eval_"
THRESHOLD_PART = "thr_"
BOUNDS = ("ci_low", "ci_high")
# Which way each evaluator figure is better, matched on the metric's own name (its start),
# never inside a class name ("eval_sensitivity_deceased" is higher-is-better). Every figure the
# evaluator reports is in one of the two (tests/evaluator/test_artifacts.py): a new one must be
# added here (one of the argmax's decisions, such as MCC, to ARGMAX_FIGURES), or the dashboard
# would rank it the wrong way round without a word.
LOWER_IS_BETTER_EVAL = ("ece", "brier", "log_loss")
# The figures of the argmax's decisions (not of its probabilities: AUC, ECE...): a constant's
# when the argmax names one class for every image (``dashboard.constant``).
ARGMAX_FIGURES = (
    "accuracy", "balanced_accuracy", "precision", "recall", "sensitivity", "specificity", "f1",
)  # fmt: skip
HIGHER_IS_BETTER_EVAL = (*ARGMAX_FIGURES, "roc_auc")
# Figures better neither way: the share of test images the model's out-of-distribution check
# flags (``eval_ood_rate``, with its Wilson bounds) and the share it expects of images like the
# validation ones (``eval_ood_expected_rate``). They say how unlike the training images the test
# images are, as the model sees them, not how good it is: a check that flags nothing is no better
# than one that flags the expected 1 %. Shown and sorted by, never ranked.
OOD_RATE = "ood_rate"
OOD_EXPECTED_RATE = "ood_expected_rate"
OOD_FIGURES = (OOD_RATE, OOD_EXPECTED_RATE)
# Figures at each run's own threshold that trade against each other (``eval_thr_sensitivity_<c>``,
# ``eval_thr_specificity_<c>``): higher is better at one threshold, but across runs the one that
# calls more images positive has the higher sensitivity and the lower specificity. Neither is a
# "best" (``trade_off``: no ★, no top-K), though each stays in HIGHER_IS_BETTER_EVAL.
TRADE_OFF_AT_THRESHOLD = ("sensitivity", "specificity")


MAX_PART_BYTES = 100
"""A class's part of a key or file name at most (UTF-8): MLflow takes keys of 250 characters and
file systems names of 255 bytes, and a misclassified image's name holds two classes' parts."""


def _digest(name: str) -> str:
    """Six hex digits of ``name``: what tells apart classes whose key parts would be one."""
    return hashlib.blake2s(name.encode("utf-8", "surrogatepass"), digest_size=3).hexdigest()


def _capped(part: str, name: str) -> str:
    """``part`` of class ``name``, cut to ``MAX_PART_BYTES`` with a digest of the whole name in
    place of its end when longer (two long names alike in their first 90 bytes stay apart)."""
    if len(part.encode()) <= MAX_PART_BYTES:
        return part
    digest = _digest(name)
    cut = part.encode()[: MAX_PART_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{cut}_{digest}"


@functools.lru_cache(maxsize=4096)  # every key of a run's figures compares all its classes
def _ascii_part(name: str) -> str:
    return _capped(re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "class", name)


def key_part(name: str, among: Collection[str] = ()) -> str:
    """``name`` (a class) as part of an MLflow metric key or a file name: its ASCII letters,
    digits and ``_.-``, other runs of characters as ``_`` (``hair loss / 'alopecia'`` →
    ``hair_loss_alopecia``).

    ``among`` are the run's classes. A class whose part another of them shares (``良性`` and
    ``悪性`` are both ``class``; ``hair loss`` and ``hair_loss``) keeps its own letters (NFC;
    MLflow takes any Unicode letter in a key) and a short digest of its name instead
    (``良性_07bb4f``): else the second class's figures would overwrite the first's under one key.
    Classes without such a twin keep the ASCII part, so keys logged before stay readable. A part
    longer than ``MAX_PART_BYTES`` is cut, ending in a digest of the name (``_capped``)."""
    part = _ascii_part(name)
    if not any(other != name and _ascii_part(other) == part for other in among):
        return part
    own = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", name)).strip("_") or "class"
    return _capped(f"{own}_{_digest(name)}", name)


def class_key(name: str, cls: str, among: Collection[str] = ()) -> str:
    """``sensitivity_melanoma``: the figure ``name`` of class ``cls`` (a report's own name) in
    a run whose classes are ``among`` (``key_part``)."""
    return f"{name}_{key_part(cls, among)}"


def eval_key(
    name: str, cls: str | None = None, *, at_threshold: bool = False, among: Collection[str] = ()
) -> str:
    """The key of the evaluator's figure ``name``: overall, of class ``cls`` (one of the run's
    classes ``among``), or of class ``cls`` at the run's threshold (``at_threshold``)."""
    key = EVAL_PREFIX + (THRESHOLD_PART if at_threshold else "") + name
    return key if cls is None else class_key(key, cls, among)


def at_threshold(key: str) -> bool:
    """Whether ``key`` is a figure of a two-class run at its threshold, the threshold itself
    (``eval_threshold``) or an interval bound of such a figure."""
    return key == eval_key("threshold") or key.startswith(EVAL_PREFIX + THRESHOLD_PART)


def bound_key(key: str, bound: str) -> str:
    """``eval_accuracy_ci_low`` for ``("eval_accuracy", "ci_low")``; ``bound`` is one of BOUNDS."""
    return f"{key}_{bound}"


def split_bound(key: str) -> tuple[str, str | None]:
    """``("eval_accuracy", "ci_low")`` for ``eval_accuracy_ci_low``; ``(key, None)`` for a value."""
    for bound in BOUNDS:
        if key.endswith(f"_{bound}"):
            return key[: -len(bound) - 1], bound
    return key, None


def is_bound(key: str) -> bool:
    """Whether ``key`` is an interval bound (folded into its value's column, never ranked)."""
    return split_bound(key)[1] is not None


def interval(metrics: Mapping[str, float], key: str) -> tuple[float, float] | None:
    """The 95 % interval ``(low, high)`` logged for ``key``, or None when a bound is missing."""
    low, high = (metrics.get(bound_key(key, bound)) for bound in BOUNDS)
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return None
    return low, high


def eval_figures(values: Mapping[str, float | str]) -> dict[str, float]:
    """The ``eval_*`` figures among ``values`` as numbers: a run's metrics, or a registered
    version's tags, which hold them as text (one that is no number is left out)."""
    figures = {}
    for key, value in values.items():
        if key.startswith(EVAL_PREFIX):
            try:
                figures[key] = float(value)
            except (TypeError, ValueError):
                continue
    return figures


def summary(metrics: Mapping[str, float], name: str) -> str:
    """``accuracy 0.912 [0.871, 0.941]`` for the overall figure ``name``, ``ece n/a`` when it is
    undefined (NaN), or "" when not logged."""
    value = metrics.get(eval_key(name))
    if value is None:
        return ""
    if math.isnan(value):
        return f"{name} n/a"
    bounds = interval(metrics, eval_key(name))
    ci = f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else ""
    return f"{name} {value:.3f}{ci}"


def _among(metric: str, names: tuple[str, ...]) -> bool:
    name = metric.removeprefix(EVAL_PREFIX).removeprefix(THRESHOLD_PART)  # also "ece" alone
    return any(name == m or name.startswith(f"{m}_") for m in names)


def ood_figure(metric: str) -> bool:
    """Whether ``metric`` (``eval_...`` or its own name, or one of its bounds) is one of the
    out-of-distribution check's ``OOD_FIGURES``, which are better neither way."""
    return _among(metric, OOD_FIGURES)


def trade_off(metric: str) -> bool:
    """Whether ``metric`` is a figure at a run's own threshold that trades against another
    (``TRADE_OFF_AT_THRESHOLD``), or an interval bound of one."""
    at = metric.startswith(EVAL_PREFIX + THRESHOLD_PART)
    return at and _among(metric, TRADE_OFF_AT_THRESHOLD)


def direction_stated(metric: str) -> bool:
    """Whether the evaluator's figure ``metric`` (``eval_...`` or its own name) is in
    LOWER_IS_BETTER_EVAL or HIGHER_IS_BETTER_EVAL, or is said to be better neither way
    (``ood_figure``)."""
    lists = (LOWER_IS_BETTER_EVAL, HIGHER_IS_BETTER_EVAL, OOD_FIGURES)
    return any(_among(metric, names) for names in lists)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better: losses, calibration errors, epoch times,
    explanations' deletion AUCs."""
    if _among(metric, LOWER_IS_BETTER_EVAL):
        return True
    if metric.startswith(EVAL_PREFIX):
        return False
    if metric.startswith("explain_deletion_auc"):
        return True
    return metric.endswith(("loss", "_error")) or metric == "epoch_time"
