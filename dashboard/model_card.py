"""The model card (Markdown) and serving instructions for a run, plus the tables they share."""

import json
import math
from datetime import UTC, datetime

import pandas as pd

from common import metric_keys
from dashboard.provenance import data_limitation, dataset_warnings, evaluation_lines
from runs import contract, run_model_uri, schemas, validation_figures


def evaluation_table(
    metrics: dict[str, float], report: schemas.EvaluationReport | None = None
) -> pd.DataFrame:
    """Evaluation metrics with intervals: columns metric, value, ci_low, ci_high[, method], overall.

    Reads the run's ``eval_*`` metrics and their interval bounds (``common.metric_keys``) and
    fills gaps from the evaluation report (``metrics.json``); ``overall`` is False for per-class
    metrics (those not in the report's ``overall``, or everything but the report's when there is
    no report and the name ends with a class).
    """
    rows: dict[str, dict] = {}
    for key, value in metrics.items():
        if key.startswith(metric_keys.EVAL_PREFIX):
            name, bound = metric_keys.split_bound(key.removeprefix(metric_keys.EVAL_PREFIX))
            rows.setdefault(name, {})[bound or "value"] = value
    overall = report.overall if report is not None else {}
    estimates = dict(overall)
    for cls, values in (report.per_class if report is not None else {}).items():
        for name, estimate in values.items():
            if isinstance(estimate, schemas.Estimate):
                estimates[metric_keys.class_key(name, cls)] = estimate
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
    ``0.1234 (95 % CI -0.0100 to 0.2400)``; the score alone for files written before the
    interval; ``–`` without a score."""
    score, low, high = (row.get(k) for k in ("score", "score_ci_low", "score_ci_high"))
    if any(_missing(v) for v in (score, low, high)):
        return _fmt(score)
    return f"{_fmt(score)} (95 % CI {_fmt(low)} to {_fmt(high)})"


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


def _places(value: float | None) -> float | None:
    """4 decimal places: a Wilson bound computed as 2e-17 reads as 0."""
    return None if value is None else round(value, 4)


BOUNDED = ("value", "ci_low", "ci_high")


def operating_point_table(point: schemas.ThresholdPoint) -> pd.DataFrame:
    """Test sensitivity and specificity of each class at the validation threshold ``point``,
    then the decision's accuracy, PPV and NPV when the evaluation has them (evaluations before
    them do not): columns class, measure, value, ci_low, ci_high."""
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
        {"class": cls, "measure": measure, **{k: _places(est.get(k)) for k in BOUNDED}}
        for cls, measure, est in found
    ]
    return pd.DataFrame(rows, columns=["class", "measure", *BOUNDED])


def describe_operating_point(point: schemas.ThresholdPoint) -> str:
    """One sentence: the rule and how it was chosen."""
    chosen = (
        f" ({validation_figures(point.model_dump(), 3)}, target {point.target_sensitivity})"
        if point.val_sensitivity is not None
        else ""
    )
    how = point.positive_chosen  # the trainer's words for how it took the positive class
    return (
        f"{point.positive_class!r} is decided when its probability is ≥ {point.threshold:.4f}, "
        f"the threshold chosen on validation data{chosen}"
        f"{f'; the positive class is {how}' if how else ''}; below, that rule on the test split."
        # with test-time augmentation: applied to other probabilities than it was chosen on
        + (f" Caveat: {point.caveat}." if point.caveat else "")
    )


def _missing(value) -> bool:
    """None, or NaN (a value pandas filled in)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value) -> str:
    if _missing(value):
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def build_model_card(
    run: dict,
    stats: schemas.DatasetStats | None = None,
    evaluation: pd.DataFrame | None = None,
    faithfulness: schemas.Faithfulness | None = None,
    preprocessing: dict | None = None,
    operating_point: schemas.ThresholdPoint | None = None,
    report: schemas.EvaluationReport | None = None,
) -> str:
    """The Markdown model card of ``run`` (a ``dashboard.reads.run_to_dict`` summary).

    ``stats``, ``faithfulness`` and ``preprocessing`` are the run's ``dataset_stats.json``,
    ``faithfulness.json`` and ``preprocessing.json``; ``evaluation`` is ``evaluation_table``;
    ``report`` is the current evaluation's ``metrics.json`` (where the figures come from) and
    ``operating_point`` its ``operating_points.threshold``.
    """
    params, run_id = run["params"], run["run_id"]
    evaluated = evaluation is not None and not evaluation.empty
    lines = [
        f"# Model card: {run['run_name']}",
        "",
        f"- Run id: `{run_id}`  ",
        f"- Model URI: `{run_model_uri(run_id)}`  ",
        f"- Architecture: {params.get('model', 'unknown')}  ",
        f"- Status: {run['status']}  ",
        f"- Generated: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        ""
        if evaluated
        else "\n**Not evaluated**: no test-set evaluation exists for this model; choosing it "
        "for deployment needs an explicit confirmation.\n",
        "## Data",
    ]
    counts = split_counts(params, stats)
    classes = params.get("class_names") or (preprocessing or {}).get("class_names")
    if isinstance(classes, str):
        try:
            classes = json.loads(classes)
        except json.JSONDecodeError:
            classes = [classes]
    lines.append(f"- Source: {params.get('dataset_source', params.get('data_dir', 'unknown'))}")
    if params.get("dataset_hash"):
        lines.append(f"- Content hash (every split): `{params['dataset_hash'][:16]}…`")
    if classes:
        lines.append(f"- Classes ({len(classes)}): {', '.join(map(str, classes))}")
    if counts:
        lines.append(
            "- Samples (the run's data at training): "
            + ", ".join(f"{s} {n}" for s, n in counts.items())
        )
    for split, per_class in class_counts(stats).items():
        lines.append(f"  - {split}: " + ", ".join(f"{c}: {n}" for c, n in per_class.items()))
    if params.get("image_size"):
        lines.append(f"- Image size: {params['image_size']}, channels: {params.get('channels')}")
    if preprocessing is not None and "modalities" in preprocessing:  # recorded since 2026-12-06
        codes = preprocessing["modalities"]
        lines.append(
            f"- DICOM modality: {', '.join(codes)} (a DICOM input of another is refused)"
            if codes
            else "- DICOM modality: none recorded (DICOM inputs of every modality are classified)"
        )
    if report is not None and report.own_data is False:
        lines.append(
            f"- The test figures below are not from this test split: the evaluation used "
            f"{report.n_samples} images of `{report.data_dir}`."
        )
    lines += [f"- **Warning**: {warning}" for warning in dataset_warnings(stats, evaluated)]
    if not (counts or classes):
        lines.append("- No dataset information was logged with this run.")
    lines += ["", "## Training setup", ""]
    shown = [(k, params[k]) for k in contract.TRAINING_PARAMS if k in params]
    if params.get("num_classes") not in (None, "2"):  # a two-class rule: unused for the others
        shown = [(k, v) for k, v in shown if k not in ("target_sensitivity", "positive_class")]
    if not shown:
        shown = sorted(params.items())[:30]
    if shown:
        lines += ["| Parameter | Value |", "|---|---|"]
        lines += [f"| {k} | {str(v)[:120]} |" for k, v in shown]
    else:
        lines.append("No parameters were logged.")
    lines += ["", "## Evaluation (test set, 95% confidence intervals)", ""]
    if evaluated:
        lines += [*evaluation_lines(contract.evaluation_dir(run["tags"]), report), ""]
        lines.append(
            "Figures of the most probable class (argmax, `predicted_class`)"
            + (
                "; the served `decision` is the threshold's, whose figures are under Decision "
                "rule below."
                if operating_point is not None
                else "."
            )
        )
        lines.append("")
        lines += ["| Metric | Value | CI low | CI high |", "|---|---|---|---|"]
        for row in evaluation[evaluation["overall"]].to_dict("records"):
            lines.append(
                f"| {row['metric']} | {_fmt(row['value'])} | {_fmt(row.get('ci_low'))} "
                f"| {_fmt(row.get('ci_high'))} |"
            )
    else:
        lines.append(
            f"Not evaluated yet: run `python -m evaluator --run-id {run_id}` or press Evaluate."
        )
    lines += ["", "## Decision rule", ""]
    if operating_point is not None:
        lines += [describe_operating_point(operating_point), ""]
        lines += ["| Class | Measure | Value | CI low | CI high |", "|---|---|---|---|---|"]
        for row in operating_point_table(operating_point).to_dict("records"):
            lines.append(
                f"| {row['class']} | {row['measure']} | {_fmt(row['value'])} "
                f"| {_fmt(row['ci_low'])} | {_fmt(row['ci_high'])} |"
            )
    elif params.get("decision_threshold"):  # chosen by the trainer, not evaluated yet
        lines.append(
            f"{params.get('positive_class')!r} is decided when its probability is ≥ "
            f"{params['decision_threshold']}, the threshold chosen on validation data; its test "
            "sensitivity and specificity come with the evaluation."
        )
    else:
        lines.append(
            "The most probable class (argmax)."
            + (
                " No threshold was chosen on validation: train with `--target-sensitivity` "
                "to decide the positive class at a chosen sensitivity."
                if classes and len(classes) == 2
                else ""
            )
        )
    lines += ["", "## Explanations", ""]
    faith = faithfulness_table(faithfulness, run["metrics"])
    if not faith.empty:
        lines.append(
            "Faithfulness by deletion (lower AUC = removing the pixels an explanation ranks first "
            "hurts the prediction sooner; score = random-order AUC − AUC, higher is better, with "
            f"its 95 % bootstrap interval over the {faithfulness_scope(faithfulness)}: an "
            "interval reaching below 0 does not show the map beats random):"
        )
        lines += [
            "",
            "| Method | Deletion AUC | Random AUC | Score | Share of samples beating random |",
            "|---|---|---|---|---|",
        ]
        for row in faith.to_dict("records"):
            lines.append(
                f"| {row['method']} | {_fmt(row['auc'])} | {_fmt(row['random_auc'])} "
                f"| {score_text(row)} | {_fmt(row['beats_random_fraction'])} |"
            )
    else:
        lines.append(
            f"Not explained yet: run `python -m explainer --run-id {run_id}` or press Explain."
        )
    lines += [
        "",
        "## Known limitations",
        "",
        data_limitation(report),
        "- Confidence intervals (95%) come from the test split only; small test sets give wide "
        "intervals. Per-class metrics are in the dashboard's Evaluation tab.",
        "- Attribution maps show what the model uses, not what is clinically relevant.",
        "- Research use only: not a medical device.",
    ]
    if run["status"] != "FINISHED":
        lines.append(f"- The training run ended with status {run['status']}.")
    return "\n".join(lines) + "\n"


def serving_instructions(
    model_name: str, alias: str, predictor_url: str, preprocessing: dict | None = None
) -> str:
    """Markdown: how downstream services get predictions from the chosen model.

    Only for models of this pipeline; ``preprocessing`` is the run's ``preprocessing.json``.
    """
    pp = preprocessing or {}
    size = pp.get("image_size")
    accepts = (
        f"any size is resized to {size[0]}×{size[1]}, {pp.get('channels')} channel(s)"
        if size
        else "any size is resized to the model's input"
    )
    classes = ", ".join(map(str, pp.get("class_names", []))) or "the run's classes"
    if pp.get("modalities"):
        accepts += f"; DICOM files of Modality {', '.join(pp['modalities'])} only"
    uri = f"models:/{model_name}@{alias}"
    return f"""The predictor at `{predictor_url}` serves `{uri}` and follows the alias: once a
run is chosen it serves the new version within `PREDICTOR_POLL_S` seconds, without a restart.

```bash
curl -X POST {predictor_url}/predict -H "Authorization: Bearer $PIPELINE_API_TOKEN" \\
     -F files=@image1.png -F files=@scan.dcm
```
Send PNG, JPEG or DICOM files ({accepts}). The answer holds, per image, the probability of each
class ({classes}), the most probable class (`predicted_class`) and, for a two-class run, the
`decision` by the threshold chosen on validation (its `operating_point`), with the registered
model name, version and run id, and `stale` with the `problem` when the alias no longer names
the version served.

The model carries its code and preprocessing, so MLflow's own server runs it outside this
repository too (input: uint8 `N×H×W×C` arrays, or base64 PNG/JPEG/DICOM in a one-column table):
```bash
MLFLOW_TRACKING_URI=<tracking server> mlflow models serve -m {uri} -p 5001 --env-manager local
```
"""
