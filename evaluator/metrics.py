"""Classification metrics with 95% confidence intervals, binary and multi-class.

Point values follow scikit-learn's definitions (``zero_division=0`` for the averages), over the
classes present in the test split: a class without a test image has undefined per-class figures,
and the macro averages, like balanced accuracy, leave it out rather than count its recall as 0
(``absent_classes`` in the report names it). Intervals are analytic where a standard method
exists: Wilson for proportions (accuracy, per-class precision, sensitivity, specificity; scipy's
``binomtest``, ``runs.wilson_interval``) and DeLong for per-class ROC AUC (``confidenceinterval``).
Everything else (balanced
accuracy, F1, macro/weighted averages, multi-class macro AUC, ECE) gets a seeded percentile
bootstrap from ``scipy.stats.bootstrap``, whose statistic computes every bootstrapped metric at
once from batched confusion matrices.

A metric that is undefined on the given data (for example the AUC of a class absent from the test
set) has ``value=None`` and a ``reason``, never an exception.
"""

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from confidenceinterval import roc_auc_score as delong_auc
from scipy.stats import bootstrap
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from common import installed_version
from runs import (  # CONFIDENCE: the one level of every interval
    CONFIDENCE,
    ResampledAuc,
    macro_auc,
    resample_counts,
    wilson_interval,
)

N_RESAMPLES = 1000
# Resamples computed at once: memory is BATCH × test images, whatever N_RESAMPLES (all 1000 at
# once held about 85 MB per 1,000 images: a 30,000-image test split outgrew the 4 GiB pod).
# The draws are the same as in one batch, so are the intervals.
BATCH = 50
ECE_BINS = 15
AVERAGES = ("macro", "weighted")


@dataclass
class Estimate:
    """A metric value with its confidence interval; ``value`` is None when undefined."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str = ""
    reason: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "value"}


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def wilson(successes: int, total: int, what: str) -> Estimate:
    """A proportion with its Wilson interval; undefined (None) when ``total`` is 0."""
    if total == 0:
        return Estimate(None, method="wilson", reason=f"no {what} in the test set")
    low, high = wilson_interval(successes, total)
    return Estimate(successes / total, low, high, "wilson")


def class_rates(cm: np.ndarray, c: int, name: str) -> dict[str, Estimate]:
    """Precision, sensitivity and specificity of class ``c`` (named ``name``) from the confusion
    matrix ``cm`` (rows true, columns predicted), each with its Wilson 95 % interval."""
    n = int(cm.sum())
    tp, support, predicted = int(cm[c, c]), int(cm[c].sum()), int(cm[:, c].sum())
    tn = n - support - (predicted - tp)
    return {
        "precision": wilson(tp, predicted, f"predictions of class {name!r}"),
        "sensitivity": wilson(tp, support, f"samples of class {name!r}"),
        "specificity": wilson(tn, n - support, f"samples outside class {name!r}"),
    }


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS):
    """Expected calibration error over equal-width bins ``(i/bins, (i+1)/bins]`` of confidence.

    Confidence is the top-class probability; ECE = sum over bins of |accuracy - confidence|
    weighted by the bin's share of samples.
    """
    conf, pred = probs.max(1)[None, :], probs.argmax(1)[None, :]
    return float(_ece_batch(y_true[None, :], conf, pred, bins)[0])


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def _ece_batch(y: np.ndarray, conf: np.ndarray, pred: np.ndarray, bins: int) -> np.ndarray:
    """ECE of each row of ``B×n`` arrays."""
    rows, n = y.shape
    offset = (np.arange(rows)[:, None] * bins + _bin_index(conf, bins)).ravel()
    gap = np.bincount(offset, weights=(conf - (pred == y)).ravel(), minlength=rows * bins)
    return np.abs(gap.reshape(rows, bins)).sum(1) / n


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


class _Bootstrapped:
    """The bootstrapped metrics as rows of one vector-valued statistic for ``scipy.stats``."""

    def __init__(self, y: np.ndarray, probs: np.ndarray, with_auc: bool) -> None:
        self.y, self.probs, self.k = y, probs, probs.shape[1]
        self.present = np.bincount(y, minlength=self.k) > 0  # the classes macro averages cover
        self.pred, self.conf = probs.argmax(1), probs.max(1)
        self.aucs = [ResampledAuc(probs[:, c], y == c) for c in range(self.k)] if with_auc else []
        self.names = ["balanced_accuracy", "ece"]
        self.names += [f"{m}_{a}" for m in ("precision", "recall", "f1") for a in AVERAGES]
        self.names += [f"f1/{c}" for c in range(self.k)]
        if self.aucs:
            self.names.append("roc_auc_macro")

    def __call__(self, idx: np.ndarray, axis: int = -1) -> np.ndarray:
        """Each metric of ``names`` (rows, in that order) for each resample ``idx`` (columns)."""
        idx = np.atleast_2d(idx)
        rows, k = idx.shape[0], self.k
        y, pred = self.y[idx], self.pred[idx]
        codes = (np.arange(rows)[:, None] * k * k + y * k + pred).ravel()
        cm = np.bincount(codes, minlength=rows * k * k).reshape(rows, k, k).astype(float)
        tp, support, predicted = np.diagonal(cm, axis1=1, axis2=2), cm.sum(2), cm.sum(1)
        per_class = {
            "precision": _safe_div(tp, predicted),
            "recall": _safe_div(tp, support),
            "f1": _safe_div(2 * tp, support + predicted),
        }
        weights = support / support.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            balanced = np.nanmean(np.where(support > 0, tp / support, np.nan), axis=1)
        # By name, stacked in the order of ``names``: a metric cannot take another's row.
        found = {
            "balanced_accuracy": balanced,
            "ece": _ece_batch(y, self.conf[idx], pred, ECE_BINS),
        }
        for name in ("precision", "recall", "f1"):
            found[f"{name}_macro"] = per_class[name][:, self.present].mean(1)
            found[f"{name}_weighted"] = (per_class[name] * weights).sum(1)
        found.update({f"f1/{c}": column for c, column in enumerate(per_class["f1"].T)})
        if self.aucs:
            found["roc_auc_macro"] = macro_auc(self.aucs, resample_counts(idx, len(self.y)))
        return np.stack([found[name] for name in self.names])


def _bootstrap_intervals(stat: _Bootstrapped, n: int, seed: int) -> dict[str, tuple]:
    if n < 2:
        return {name: (None, None) for name in stat.names}
    res = bootstrap(
        (np.arange(n),),
        stat,
        vectorized=True,
        n_resamples=N_RESAMPLES,
        batch=BATCH,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return {name: (_num(lo), _num(hi)) for name, lo, hi in zip(stat.names, low, high, strict=True)}


def _class_auc(y: np.ndarray, score: np.ndarray, name: str) -> Estimate:
    positives = int(y.sum())
    if positives in (0, len(y)):
        missing = "absent from" if positives == 0 else "the only class in"
        return Estimate(None, method="delong", reason=f"class {name!r} is {missing} the test set")
    value, (low, high) = delong_auc(y.astype(int), score, confidence_level=CONFIDENCE)
    low, high = max(float(low), 0.0), min(float(high), 1.0)
    return Estimate(float(value), _num(low), _num(high), "delong")


def _binary_auc(y: np.ndarray, probs: np.ndarray, class_names: list[str]) -> Estimate | None:
    """The one AUC of both classes of a two-class run, from the second class's scores in
    float64; None when undefined (each class's own computation says why). Computing each class
    from its own column gave 0.8062 and 0.8063 for one 0.80625: ``1 - p`` in float32 ties or
    re-orders scores that ``p`` does not (the per-class rates come from one confusion matrix)."""
    auc = _class_auc(y == 1, probs[:, 1].astype(np.float64), class_names[1])
    return auc if auc.value is not None else None


def compute_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str], seed: int = 0
) -> dict:
    """Every evaluation metric with its interval.

    Args:
        y_true: Integer labels ``0..K-1``, shape ``N``.
        probs: Class probabilities, shape ``N×K`` (rows sum to 1).
        class_names: Name of each of the ``K`` classes.
        seed: Seed of the bootstrap.

    Returns:
        JSON-able ``{"n_samples", "confidence_level", "class_names", "overall": {name: estimate},
        "per_class": {class: {name: estimate, "support": n}}, "confusion_matrix": K×K,
        "absent_classes": [class without a test sample]}``, each estimate a dict ``{value,
        ci_low, ci_high, method[, reason]}``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    labels = list(range(k))
    pred = probs.argmax(1)
    cm = confusion_matrix(y_true, pred, labels=labels)
    present = np.bincount(y_true, minlength=k) > 0
    tested = [c for c in labels if present[c]]  # the labels of the averages

    per_class: dict[str, dict] = {}
    aucs: list[Estimate] = []
    f1 = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)[2]
    binary = _binary_auc(y_true, probs, class_names) if k == 2 else None
    for c, name in enumerate(class_names):
        rates = class_rates(cm, c, name)
        auc = binary or _class_auc(y_true == c, probs[:, c], name)
        aucs.append(auc)
        per_class[name] = {
            "support": int(cm[c].sum()),
            "precision": rates["precision"],
            "recall": rates["sensitivity"],
            "sensitivity": rates["sensitivity"],
            "specificity": rates["specificity"],
            "f1": Estimate(float(f1[c]), method="bootstrap_percentile"),
            "roc_auc": auc,
        }

    stat = _Bootstrapped(y_true, probs, with_auc=k > 2 and present.all())
    intervals = _bootstrap_intervals(stat, n, seed)

    def boot(name: str, value: float) -> Estimate:
        low, high = intervals[name]
        return Estimate(float(value), low, high, "bootstrap_percentile")

    correct = int((pred == y_true).sum())
    overall = {
        "accuracy": wilson(correct, n, "samples"),
        "balanced_accuracy": boot("balanced_accuracy", _balanced_accuracy(y_true, pred)),
    }
    for avg in AVERAGES:
        p, r, f, _ = precision_recall_fscore_support(
            y_true, pred, labels=tested, average=avg, zero_division=0
        )
        for metric, value in (("precision", p), ("recall", r), ("f1", f)):
            overall[f"{metric}_{avg}"] = boot(f"{metric}_{avg}", value)
    overall["roc_auc_macro"] = _macro_auc(y_true, probs, aucs, class_names, intervals)
    overall["ece"] = boot("ece", expected_calibration_error(y_true, probs))
    for c, name in enumerate(class_names):
        per_class[name]["f1"] = (
            boot(f"f1/{c}", f1[c])
            if present[c]  # F1 needs the class's recall: undefined without its samples
            else Estimate(None, method="bootstrap_percentile", reason=f"no samples of class "
                          f"{name!r} in the test set")
        )  # fmt: skip

    return {
        "n_samples": n,
        "confidence_level": CONFIDENCE,
        "class_names": list(class_names),
        "overall": {key: est.to_dict() for key, est in overall.items()},
        "per_class": {
            name: {key: v if isinstance(v, int) else v.to_dict() for key, v in d.items()}
            for name, d in per_class.items()
        },
        "confusion_matrix": cm.tolist(),
        "ece_bins": ECE_BINS,
        "absent_classes": [name for c, name in enumerate(class_names) if not present[c]],
        "computed_with": computed_with(seed),
    }


def computed_with(seed: int) -> dict:
    """How the intervals were computed, so that they can be recomputed from predictions.csv:
    the bootstrap's resamples and seed, and the versions of the libraries that compute them."""
    return {
        "bootstrap_resamples": N_RESAMPLES,
        "bootstrap_seed": seed,
        "packages": {name: installed_version(name) for name in ("numpy", "scipy", "scikit-learn")},
    }


def _balanced_accuracy(y_true: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's balanced accuracy: mean recall over the classes present in ``y_true``."""
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": expected here
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, pred))


def _macro_auc(y_true, probs, aucs, class_names, intervals) -> Estimate:
    undefined = [name for name, auc in zip(class_names, aucs, strict=True) if auc.value is None]
    if undefined:
        return Estimate(
            None,
            method="bootstrap_percentile" if len(class_names) > 2 else "delong",
            reason=f"one-vs-rest AUC is undefined for {', '.join(map(repr, undefined))} "
            "(absent from the test set or its only class)",
        )
    if len(class_names) == 2:  # both one-vs-rest AUCs equal the binary AUC
        return aucs[1]
    labels = list(range(len(class_names)))
    value = roc_auc_score(y_true, probs, multi_class="ovr", average="macro", labels=labels)
    low, high = intervals["roc_auc_macro"]
    return Estimate(float(value), low, high, "bootstrap_percentile")
