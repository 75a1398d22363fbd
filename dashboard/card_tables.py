"""The tables that the model card and the dashboard's tabs share: evaluation figures with their
intervals, faithfulness scores, split and class counts, the operating point."""

import math

import pandas as pd

from common import metric_keys
from dashboard import readable
from dashboard.markup import plain
from runs import schemas, validation_figures


def evaluation_table(
    metrics: dict[str, float], report: schemas.EvaluationReport | None = None
) -> pd.DataFrame:
    """Evaluation metrics with intervals: columns metric, value, ci_low, ci_high[, method], overall.

    Reads the run's ``eval_*`` metrics and their interval bounds (``common.metric_keys``) and
    fills gaps from the evaluation report (``metrics.json``, the ``eval_thr_*`` figures' from
    its ``operating_points.threshold``: each row's interval ``method`` too); ``overall`` is False
    for per-class metrics (those not in the report's ``overall``, or everything but the report's
    when there is no report and the name ends with a class). The out-of-distribution check's figures
    (``eval_ood_rate``...) are no figures of the model's answers, overall or per class: they have
    their own section and sentence (``dashboard.ood``).
    """
    rows: dict[str, dict] = {}
    for key, value in metrics.items():
        if key.startswith(metric_keys.EVAL_PREFIX) and not metric_keys.ood_figure(key):
            name, bound = metric_keys.split_bound(key.removeprefix(metric_keys.EVAL_PREFIX))
            rows.setdefault(name, {})[bound or "value"] = value
    overall = report.overall if report is not None else {}
    estimates = dict(overall)
    for cls, values in (report.per_class if report is not None else {}).items():
        for name, estimate in values.items():
            if isinstance(estimate, schemas.Estimate):
                estimates[metric_keys.class_key(name, cls, report.class_names)] = estimate
    point = report and report.operating_points and report.operating_points.threshold
    for cls, values in (point.per_class if point else {}).items():  # the eval_thr_* rows logged
        for name, estimate in values.items():
            at = metric_keys.eval_key(name, cls, at_threshold=True, among=report.class_names)
            if (row := at.removeprefix(metric_keys.EVAL_PREFIX)) in rows:
                estimates[row] = estimate
    for name, estimate in estimates.items():
        row = rows.setdefault(name, {})
        for field in ("value", "ci_low", "ci_high", "method"):
            found = getattr(estimate, field)
            if found is not None and field not in row:
                row[field] = found
    table = pd.DataFrame(
        [
            {"metric": k, **v, "overall": report is None or k in overall}
            for k, v in sorted(rows.items())
            if v.get("value") is not None
        ],
        columns=["metric", "value", "ci_low", "ci_high", "method", "overall"],
    )
    if table["method"].isna().all():
        table = table.drop(columns="method")
    return table


def faithfulness_table(
    faithfulness: schemas.Faithfulness | None, metrics: dict[str, float]
) -> pd.DataFrame:
    """One row per attribution method: deletion AUC, random-order AUC, score, beats-random share.

    Uses the explanation's ``faithfulness.json`` and falls back to the run's
    ``explain_deletion_auc_<method>`` metrics.
    """
    fields = ("auc", "random_auc", "score", "score_ci_low", "score_ci_high",
              "beats_random_fraction")  # fmt: skip
    rows = {}
    for name, entry in (faithfulness.methods if faithfulness is not None else {}).items():
        rows[name] = {k: getattr(entry, k) for k in fields}
    prefix = "explain_deletion_auc_"
    random_auc = metrics.get(f"{prefix}random")  # the random order's: a yardstick, not a method
    for key, value in metrics.items():
        if key.startswith(prefix) and key != f"{prefix}random":
            row = rows.setdefault(key[len(prefix) :], {})
            row.setdefault("auc", value)
            row.setdefault("random_auc", random_auc)
    columns = ["method", *fields]
    return pd.DataFrame([{"method": m, **v} for m, v in sorted(rows.items())], columns=columns)


def score_text(row: dict) -> str:
    """A faithfulness row's score with its 95 % interval over the explained images:
    ``0.1234 (95 % CI -0.01 to 0.24)`` (``fmt_value``, ``fmt_bound``); the score alone for files
    written before the interval; ``–`` without a score."""
    score, low, high = (row.get(k) for k in ("score", "score_ci_low", "score_ci_high"))
    if any(is_missing(v) for v in (score, low, high)):
        return fmt_value(score)
    return f"{fmt_value(score)} (95 % CI {fmt_bound(low)} to {fmt_bound(high)})"


def explained_images(faithfulness: schemas.Faithfulness | None) -> int | None:
    """How many images the faithfulness figures average over (older files: from the random
    order's per-image AUCs); None when unknown."""
    if faithfulness is None:
        return None
    if faithfulness.n_samples is not None:
        return faithfulness.n_samples
    per_image = faithfulness.random.get("auc_per_sample")
    return len(per_image) if isinstance(per_image, list) else None


def faithfulness_scope(faithfulness: schemas.Faithfulness | None) -> str:
    """``8 explained images``, ``explained images`` when the count is unknown, and for fewer
    than five what is missing: ``2 explained images (too few for an interval: explain 5 or
    more)``."""
    n = explained_images(faithfulness)
    if n is None:
        return "explained images"
    least = schemas.FAITHFULNESS_MIN_IMAGES
    if n < least:
        return f"{n} explained images (too few for an interval: explain {least} or more)"
    return f"{n} explained images"


def split_counts(params: dict[str, str], stats: schemas.DatasetStats | None) -> dict[str, int]:
    """Sample counts per split from the ``data_n_*`` params or ``dataset_stats.json``."""
    counts = {}
    for split in ("train", "val", "test"):
        value = params.get(f"data_n_{split}")
        if value is not None and value.isdigit():
            counts[split] = int(value)
    if not counts and stats is not None:
        for split, entry in class_counts(stats).items():
            counts[split] = int(sum(entry.values()))
    return counts


def class_counts(stats: schemas.DatasetStats | None) -> dict[str, dict[str, int]]:
    """``{split: {class: count}}`` of ``dataset_stats.json`` (without the ``total`` entries)."""
    if stats is None:
        return {}
    return {
        split: {c: int(n) for c, n in per_class.items() if c != "total"}
        for split, per_class in stats.counts.items()
    }


BOUNDED = ("value", "ci_low", "ci_high")


def operating_point_table(point: schemas.ThresholdPoint) -> pd.DataFrame:
    """Test sensitivity and specificity of each class at the validation threshold ``point``,
    then the decision's accuracy, PPV and NPV when the evaluation has them (evaluations before
    them do not): columns class, measure, value, ci_low, ci_high, the figures as computed (a
    table writes them by ``readable.figure``: ``fmt_value``, the Evaluation tab's ``figures``)."""
    found = [(cls, measure, est.model_dump()) for cls, measures in point.per_class.items()
             for measure, est in measures.items()]  # fmt: skip
    for key, cls, measure in (
        ("accuracy", "all images", "accuracy"),
        ("ppv", point.positive_class, "PPV (decided positive: truly so)"),
        ("npv", point.positive_class, "NPV (decided negative: truly so)"),
    ):
        if (est := getattr(point, key)) is not None:
            found.append((cls, measure, est.model_dump()))
    rows = [
        {"class": cls, "measure": measure, **{k: est.get(k) for k in BOUNDED}}
        for cls, measure, est in found
    ]
    return pd.DataFrame(rows, columns=["class", "measure", *BOUNDED])


def describe_operating_point(point: schemas.ThresholdPoint) -> str:
    """One sentence of Markdown: the rule and how it was chosen (names escaped)."""
    chosen = (
        f" ({validation_figures(point.model_dump(), 3)}, target {point.target_sensitivity})"
        if point.val_sensitivity is not None
        else ""
    )
    how = point.positive_chosen  # the trainer's words for how it took the positive class
    return (
        f"{plain(repr(point.positive_class))} is decided when its probability is ≥ "
        f"{readable.figure(point.threshold)}, the threshold chosen on validation data{chosen}"
        f"{f'; the positive class is {plain(how)}' if how else ''}; below, that rule on the test "
        "split." + (f" Caveat: {plain(point.caveat)}." if point.caveat else "")
        # with test-time augmentation: applied to other probabilities than it was chosen on
    )


def is_missing(value) -> bool:
    """None, or NaN (a value pandas filled in)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_value(value, digits: int = 4) -> str:
    """A cell of the model card: a float by ``readable.figure`` to ``digits`` significant digits
    (an interval's bounds: ``readable.BOUND_DIGITS``), as the dashboard's tabs write the same
    figure; ``–`` when missing; anything else as it is."""
    if is_missing(value):
        return "–"
    return readable.figure(value, digits) if isinstance(value, float) else str(value)


def fmt_bound(value) -> str:
    """``fmt_value`` of an interval's bound: to ``readable.BOUND_DIGITS``."""
    return fmt_value(value, readable.BOUND_DIGITS)
