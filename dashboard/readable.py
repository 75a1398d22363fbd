"""How the dashboard shows a metric to a person: its name (``label``) and its value (``figure``).

One mapping from MLflow's keys to names (``eval_roc_auc_macro`` → ``test AUC (macro)``,
``val_loss`` → ``validation loss``, ``epoch_time`` → ``epoch time (s)``), and one rule that
writes a figure (an interval's bounds to ``BOUND_DIGITS``), so that the leaderboard, the Metrics,
Evaluation and Compare tabs and the charts' text alternatives name a metric alike and write the
same number alike. A key the mapping does not know is shown as it is: a name is never guessed.
Wherever a label stands for a key, the key stays at hand (a column's help, a picker's option),
so that the metric can be found in MLflow.
"""

import math
import re
from decimal import ROUND_HALF_UP, Decimal

from common import metric_keys

# What a prefix of a key says the figure was measured on, longest first; the second part goes
# after the figure's name (``test sensitivity at threshold (melanoma)``).
SPLITS = (
    (metric_keys.EVAL_PREFIX + metric_keys.THRESHOLD_PART, "test", " at threshold"),
    (metric_keys.EVAL_PREFIX, "test", ""),
    ("best_val_", "best validation", ""),
    ("val_", "validation", ""),
    ("train_", "training", ""),
)
# The figures' own names; after one, the rest of an evaluator's key is a class or an average
# (``roc_auc_macro``, ``sensitivity_melanoma``: in brackets).
FIGURES = {
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
    "roc_auc": "AUC",
    "auc": "AUC",
    "loss": "loss",
    "log_loss": "log loss",
    "ece": "calibration error (ECE)",
    "brier": "Brier score",
    "precision": "precision",
    "recall": "recall",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "f1": "F1",
    "ppv": "PPV",
    "npv": "NPV",
    metric_keys.OOD_RATE: "OOD rate",
}
_LONGEST_FIRST = sorted(FIGURES, key=len, reverse=True)  # balanced_accuracy before accuracy
# Whole keys, with their unit where they have one.
KEYS = {
    "epoch_time": "epoch time (s)",
    "lr": "learning rate",
    "epoch": "epoch",
    "best_epoch": "best epoch",
    "step": "step",
    metric_keys.eval_key("threshold"): "decision threshold (chosen on validation)",
    metric_keys.eval_key(metric_keys.OOD_EXPECTED_RATE): "expected OOD rate",
}
_MEMBER = re.compile(r"member(\d+)_")
BOUND_WORDS = {"ci_low": "95 % interval low", "ci_high": "95 % interval high"}
ZERO = 1e-12  # closer to 0 or ±1 is floating-point noise of it (a Wilson bound of 2e-17)
SMALL = 1e-3  # smaller figures are written in scientific notation (``5.00e-04``)
LARGE = 1e15  # and larger ones: no count or time of a run; a diverged loss
BOUND_DIGITS = 3  # significant digits of a 95 % interval's bounds: ``0.893 (0.834–0.933)``


def label(key: str) -> str:
    """The name of the metric ``key`` for a person; ``key`` itself when it is not one of the
    pipeline's (a metric logged by hand, an autologged one)."""
    if key in KEYS:
        return KEYS[key]
    value, bound = metric_keys.split_bound(key)
    if bound is not None:
        named = label(value)
        return key if named == value else f"{named}, {BOUND_WORDS[bound]}"
    member = _MEMBER.match(key)  # an ensemble member's curve: member2_val_loss
    rest = key[member.end() :] if member else key
    for prefix, split, after in SPLITS:
        if rest.startswith(prefix):
            name = _figure(rest.removeprefix(prefix), after, prefix.startswith("eval_"))
            if name is not None:
                whose = f"member {member.group(1)} " if member else ""
                return f"{whose}{split} {name}"
            break
    return key


def evaluated(name: str) -> str:
    """``label`` of an evaluator's figure named without the ``eval_`` of its key, as the
    evaluation's report and table name it: ``roc_auc_macro`` is ``test AUC (macro)``."""
    return label(metric_keys.eval_key(name))


def _figure(name: str, after: str, evaluator: bool) -> str | None:
    """``sensitivity at threshold (melanoma)`` of ``sensitivity_melanoma``; a class or an average
    only after the evaluator's figures (the trainer logs none); None: not a known figure."""
    if name in FIGURES:
        return FIGURES[name] + after
    for own in _LONGEST_FIRST if evaluator else ():
        if name.startswith(own + "_"):  # a class's or an average's figure
            return f"{FIGURES[own]}{after} ({name[len(own) + 1 :]})"
    return None


def option(key: str) -> str:
    """A picker's option: ``test AUC (macro) · eval_roc_auc_macro``; the key alone when it has
    no other name. Both can be typed to find it."""
    shown = label(key)
    return key if shown == key else f"{shown} · {key}"


def figure(value: float | None, digits: int = 4) -> str:
    """``value`` for a person, to ``digits`` significant digits; ``–`` when missing or NaN.

    Rounded half up from the number as MLflow shows it (its shortest decimal, ``repr``): 0.99125
    reads 0.9913, as a person rounding MLflow's figure would. Rounding the binary value instead
    (Python's ``:.4g``) gave 0.9912, the value being stored a hair below 0.99125, while a table
    left to Streamlit's number formatting showed 0.9913. And:

    - a value that is not 1 never reads 1 (nor 1.000): digits are added until it differs, so
      that an AUC or a sensitivity short of perfect never looks perfect (0.99995 reads 0.99995,
      an interval's bound of 0.9996 to three digits 0.9996; 1.00004 reads 1.00004); likewise -1;
    - from 1 up, fixed notation, a whole number in full (12345 reads 12345, 12345.6 reads 12346,
      9999.5 reads 10000: rounded to the unit, never to ``1e+04``): epoch times in seconds,
      steps, counts. From ``LARGE`` (a diverged loss), scientific: ``3.403e+38``;
    - below 0.001, three significant digits in scientific notation (``5.00e-04``, a learning
      rate): a small value reads 0 only within ``ZERO`` of it;
    - within ``ZERO`` of 0 or of ±1, that number: a Wilson bound computed as 2.8e-17 is an
      exact 0 to floating-point noise (a figure of a test set is short of 1 by far more: an AUC
      by 1/(positives × negatives) at least);
    - a negative value with ``-`` (as Compare writes a difference: ``-0.0123``); ``inf``,
      ``-inf`` as Python writes them.
    """
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return f"{value:g}"
    size = abs(value)
    if size < ZERO:
        return "0"
    if abs(size - 1) < ZERO:
        return "-1" if value < 0 else "1"
    exact = Decimal(repr(float(value)))
    if size < SMALL or size >= LARGE:
        kept = 3 if size < SMALL else digits
        return f"{float(_rounded(exact, kept)):.{kept - 1}e}"  # writes the kept digits back
    kept = max(digits, exact.adjusted() + 1)  # a whole number in full
    rounded = _rounded(exact, kept)
    while abs(rounded) == 1:  # 0.99995: not 1 (ends: the value is not 1, its digits are few)
        kept += 1
        rounded = _rounded(exact, kept)
    return f"{rounded.normalize():f}"


def _rounded(exact: Decimal, kept: int) -> Decimal:
    """``exact`` rounded half up to ``kept`` significant digits."""
    step = Decimal(1).scaleb(exact.adjusted() - kept + 1)  # the last digit kept
    return exact.quantize(step, rounding=ROUND_HALF_UP)
