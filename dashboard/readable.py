"""How the dashboard shows a metric to a person: its name (``label``) and its value (``figure``).

One mapping from MLflow's keys to names (``eval_roc_auc_macro`` → ``test AUC (macro)``,
``val_loss`` → ``validation loss``, ``epoch_time`` → ``epoch time (s)``), and one rule that
writes a figure (``common.figure``, which the evaluator's plots follow too; an interval's bounds
to ``BOUND_DIGITS``), so that the leaderboard, the Metrics,
Evaluation and Compare tabs and the charts' text alternatives name a metric alike and write the
same number alike. A key the mapping does not know is shown as it is: a name is never guessed.
Wherever a label stands for a key, the key stays at hand (a column's help, a picker's option),
so that the metric can be found in MLflow.
"""

import re

from common import figure as common_figure
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
    """``value`` for a person, to ``digits`` significant digits (``–`` when missing or NaN):
    ``common.figures.figure``, the one rule, which the evaluator's plots follow too (0.49 reads
    0.4900, 0.99125 0.9913, 0.99995 never 1, 0.0005 0.000500, 12345.6 12346)."""
    return common_figure(value, digits)
