"""The model card (Markdown) and serving instructions for a run (its tables: ``card_tables``)."""

import json
from datetime import UTC, datetime

import pandas as pd

from common import InvalidInput, Settings, get_settings
from dashboard import readable
from dashboard.card_tables import (
    class_counts,
    describe_operating_point,
    faithfulness_scope,
    faithfulness_table,
    fmt_bound,
    fmt_value,
    operating_point_table,
    score_text,
    split_counts,
)
from dashboard.chosen_on import ChosenOn, card_lines
from dashboard.commands import cli_code
from dashboard.markup import cell, code, name_list, plain
from dashboard.ood import card_line
from dashboard.provenance import (
    data_limitation,
    dataset_warnings,
    evaluation_lines,
    training_provenance,
)
from runs import (
    MAX_DISTORTION,
    MAX_PIXELS,
    MAX_UPSCALE,
    MODEL_RECORD_KEY,
    contract,
    recorded_model,
    run_model_uri,
    schemas,
)

NOTHING = (None, "None", "")  # a param's value that records nothing (MLflow logs None as text)


def build_model_card(
    run: dict,
    stats: schemas.DatasetStats | None = None,
    evaluation: pd.DataFrame | None = None,
    faithfulness: schemas.Faithfulness | None = None,
    preprocessing: dict | None = None,
    operating_point: schemas.ThresholdPoint | None = None,
    report: schemas.EvaluationReport | None = None,
    chosen: ChosenOn | None = None,
    settings: Settings | None = None,
) -> str:
    """The Markdown model card of ``run`` (a ``dashboard.reads.run_to_dict`` summary).

    ``stats``, ``faithfulness`` and ``preprocessing`` are the run's ``dataset_stats.json``,
    ``faithfulness.json`` and ``preprocessing.json``; ``evaluation`` is ``evaluation_table``;
    ``report`` is the current evaluation's ``metrics.json`` (where the figures come from) and
    ``operating_point`` its ``operating_points.threshold``; its ``own_data`` is settled for the
    run (``EvaluationReport.of_run``), as every reader of it does. ``chosen``: what the version
    of the run that the alias names records of the evaluation it was chosen on (``ChosenOn``):
    the card says whether its figures are those, and which they were when not. ``settings``:
    the session's (default: the process's), whose server and data the commands it shows name
    (``commands.cli_command``).
    """
    params, run_id = run["params"], run["run_id"]
    settings = settings or get_settings()
    report = report and report.of_run(params.get("data_dir"))
    evaluated = evaluation is not None and not evaluation.empty
    lines = [
        f"# Model card: {plain(run['run_name'])}",
        "",
        f"- Run id: `{run_id}`  ",
        f"- Model URI: {model_uri_line(run_id, params)}  ",
        f"- Architecture: {plain(params.get('model', 'unknown'))}  ",
        f"- Status: {plain(run['status'])}  ",
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
    source = params.get("dataset_source", params.get("data_dir", "unknown"))
    lines.append(f"- Source: {plain(source)}")
    if params.get("dataset_hash"):
        lines.append(f"- Content hash (every split): {code(params['dataset_hash'])}")
    if classes:
        lines.append(f"- Classes ({len(classes)}): {name_list(classes)}")
    if counts:
        lines.append(
            "- Samples (the run's data at training): "
            + plain(", ".join(f"{s} {n}" for s, n in counts.items()))
        )
    for split, per_class in class_counts(stats).items():
        counted = ", ".join(f"{c}: {n}" for c, n in per_class.items())
        lines.append(f"  - {plain(split)}: {plain(counted)}")
    if params.get("image_size"):
        size, channels = params["image_size"], params.get("channels")
        lines.append(f"- Image size: {plain(size)}, channels: {plain(channels)}")
    if preprocessing is not None and "modalities" in preprocessing:  # recorded since 2026-12-06
        codes = preprocessing["modalities"]
        lines.append(
            f"- DICOM modality: {plain(', '.join(codes))} (a DICOM input of another is refused)"
            if codes
            else "- DICOM modality: none recorded (DICOM inputs of every modality are classified)"
        )
    if report is not None and report.data_changed:
        lines.append(
            f"- The test figures below are not from this test split: {plain(report.data_changed)}."
        )
    elif report is not None and report.own_data is False:
        lines.append(
            f"- The test figures below are not from this test split: the evaluation used "
            f"{report.n_samples} images of {code(report.data_dir)}."
        )
    lines += [f"- **Warning**: {plain(w)}" for w in dataset_warnings(stats, evaluated)]
    if not (counts or classes):
        lines.append("- No dataset information was logged with this run.")
    lines += ["", "## Training setup", ""]
    # a param logged as None (``--modality`` not given) says nothing: left out
    shown = [(k, params[k]) for k in contract.TRAINING_PARAMS if params.get(k) not in NOTHING]
    if params.get("num_classes") not in (None, "2"):  # a two-class rule: unused for the others
        shown = [(k, v) for k, v in shown if k not in ("target_sensitivity", "positive_class")]
    if not shown:
        shown = [(k, v) for k, v in sorted(params.items()) if v not in NOTHING][:30]
    if shown:
        lines += ["| Parameter | Value |", "|---|---|"]
        lines += [f"| {cell(k)} | {cell(str(v)[:120])} |" for k, v in shown]
    else:
        lines.append("No parameters were logged.")
    lines += ["", "## Provenance", "", *training_provenance(run)]
    lines += ["", "## Evaluation (test set, 95% confidence intervals)", ""]
    if evaluated:
        lines += evaluation_lines(contract.evaluation_dir(run["tags"]), report)
        lines += [*card_lines(chosen, run["tags"]), ""]
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
                f"| {cell(readable.evaluated(row['metric']))} | {fmt_value(row['value'])} "
                f"| {fmt_bound(row.get('ci_low'))} | {fmt_bound(row.get('ci_high'))} |"
            )
    else:
        lines.append(
            f"Not evaluated yet: run {cli_code(settings, 'evaluator', run_id)} or press Evaluate."
        )
        lines += card_lines(chosen, run["tags"])
    lines += ["", "## Decision rule", ""]
    if operating_point is not None:
        lines += [describe_operating_point(operating_point), ""]
        lines += ["| Class | Measure | Value | CI low | CI high |", "|---|---|---|---|---|"]
        for row in operating_point_table(operating_point).to_dict("records"):
            lines.append(
                f"| {cell(row['class'])} | {cell(row['measure'])} | {fmt_value(row['value'])} "
                f"| {fmt_bound(row['ci_low'])} | {fmt_bound(row['ci_high'])} |"
            )
    elif params.get("decision_threshold"):  # chosen by the trainer, not evaluated yet
        lines.append(
            f"{plain(repr(params.get('positive_class')))} is decided when its probability is ≥ "
            f"{plain(params['decision_threshold'])}, the threshold chosen on validation data; its "
            "test sensitivity and specificity come with the evaluation."
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
                f"| {cell(row['method'])} | {fmt_value(row['auc'])} "
                f"| {fmt_value(row['random_auc'])} | {score_text(row)} "
                f"| {fmt_value(row['beats_random_fraction'])} |"
            )
    else:
        lines.append(
            f"Not explained yet: run {cli_code(settings, 'explainer', run_id)} or press Explain."
        )
    lines += [
        "",
        "## Known limitations",
        "",
        data_limitation(report),
        "- Confidence intervals (95%) come from the test split only; small test sets give wide "
        "intervals. Per-class metrics are in the dashboard's Evaluation tab.",
        "- Attribution maps show what the model uses, not what is clinically relevant.",
        card_line(params, report),
        "- Research use only: not a medical device.",
    ]
    if run["status"] != "FINISHED":
        lines.append(f"- The training run ended with status {plain(run['status'])}.")
    return "\n".join(lines) + "\n"


def nested(card: str, under: int) -> str:
    """``card`` with each heading ``under`` levels deeper (its ``#`` an h4 below an h3), so that
    shown on a page its headings nest under the page's; fenced code is left as it is."""
    lines, fenced = [], False
    for line in card.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            line = "#" * under + line
        lines.append(line)
    return "\n".join(lines)


def model_uri_line(run_id: str, params: dict[str, str]) -> str:
    """Markdown: the URI of the model the run's training logged (``models:/<id>`` of its param
    ``logged_model``), or ``runs:/<id>/model`` for a run trained before that record; for a run
    whose record is missing or malformed, why it names none."""
    chosen = "a registered version `models:/NAME/N` is the copy that was chosen"
    try:
        recorded = recorded_model(run_id, params)
    except InvalidInput as exc:
        return f"none: {plain(str(exc))}"
    if recorded is None:
        return f"`{run_model_uri(run_id)}` (the latest model logged into the run; {chosen})"
    return (
        f"`models:/{recorded[0]}` (the model its training logged, param "
        f"`{MODEL_RECORD_KEY}`; {chosen})"
    )


def serving_instructions(
    model_name: str, alias: str, predictor_url: str, preprocessing: dict | None = None
) -> str:
    """Markdown: how downstream services get predictions from the chosen model.

    Only for models of this pipeline; ``preprocessing`` is the run's ``preprocessing.json``.
    """
    pp = preprocessing or {}
    size = pp.get("image_size")
    accepts = (
        f"resized to {size[0]}×{size[1]}, {pp.get('channels')} channel(s)"
        if size
        else "resized to the model's input"
    )
    classes = name_list(pp["class_names"]) if pp.get("class_names") else "the run's classes"
    if pp.get("modalities"):
        accepts += f"; DICOM files of Modality {plain(', '.join(pp['modalities']))} only"
    accepts += (  # ``runs.misfit``, ``MAX_PIXELS``: refused, not resized
        f"; an image more than {MAX_UPSCALE}× smaller a side, more than {MAX_DISTORTION}× out of "
        f"that shape, or over {MAX_PIXELS // 1_000_000} megapixels is refused"
    )
    uri = f"models:/{model_name}@{alias}"
    return f"""The predictor at `{predictor_url}` serves `{uri}` and follows the alias: once a
run is chosen it serves the new version within `PREDICTOR_POLL_S` seconds, without a restart.

```bash
curl -X POST {predictor_url}/predict -H "Authorization: Bearer $PIPELINE_API_TOKEN" \\
     -F files=@image1.png -F files=@scan.dcm
```
Send PNG, JPEG or DICOM files ({accepts}). The answer holds, per image, the probability of each
class ({classes}), the most probable class (`predicted_class`) and, for a two-class run, the
`decision` by the threshold chosen on validation (its `operating_point`), its `ood_score` and
`out_of_distribution` (true: unlike the training images, send it to a person; null: the model
has no such check, `ood_check`) and an `input_note` when its reading dropped something (a colour
image read as grey), with the registered model name, version and run id, and `stale` with the
`problem` when the alias no longer names the version served.

The model carries its code and preprocessing, so MLflow's own server runs it outside this
repository too (input: uint8 `N×H×W×C` arrays, or base64 PNG/JPEG/DICOM in a one-column table):
```bash
PATH=<virtualenv>/bin:$PATH MLFLOW_TRACKING_URI=<tracking server> \\
  mlflow models serve -m {uri} -p 5001 --env-manager local
```
(it starts `uvicorn` by name: the virtualenv with the pinned packages goes first on `PATH`)
"""
