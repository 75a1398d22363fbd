"""What a reader of a run's test figures must know, in the words the model card and the
Metrics and Evaluation tabs share: which evaluation they come from (folder, date, data,
test-time augmentation, caveats), the dataset's warnings (images under two classes,
duplicates across splits) and how the model was made (``training_provenance``).

Pure functions of the run's typed results: no Streamlit, no MLflow reads.
"""

import json
from datetime import UTC, datetime

import pandas as pd

from dashboard import durations, handoff
from dashboard.leakage import describe, stats_overlap, train_val_overlap
from dashboard.markup import code, plain
from runs import DIGEST_KEY, contract, schemas


def leakage_rows(stats: dict | None) -> pd.DataFrame:
    """One row per split pair and kind (exact, near) with duplicates in ``dataset_stats.json``,
    with up to three example pairs; empty when there are none or no leakage check."""
    leakage = (stats or {}).get("leakage") or {}
    rows = [
        (pair, kind, found["count"],
         "; ".join(f"{e['a']} ≈ {e['b']}" for e in found.get("examples", [])[:3]))
        for kind in ("exact", "near")
        for pair, found in (leakage.get(kind) or {}).items()
        if found.get("count")
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["splits", "duplicates", "images", "examples"])


def dataset_warnings(stats: schemas.DatasetStats | None, evaluated: bool = True) -> list[str]:
    """One sentence per problem of the dataset that weakens its figures: (near-)identical
    images under two classes; a test split sharing images or patients with train or val
    (``leakage.stats_overlap``, the rule of the leaderboard and of choosing: test figures
    optimistic); and train and val sharing them (validation figures optimistic, not the test
    ones); empty without statistics or problems. A run not ``evaluated`` has no test figures
    yet: said of the figures an evaluation would make."""
    if stats is None:
        return []
    found = []
    if note := stats.label_conflict_note:
        found.append(f"Labels in conflict: {note}.")
    if test := stats_overlap(stats):
        where = describe(test, "the test split and train/val")
        found.append(
            f"Possible leakage: {where}; test figures may be optimistic."
            if evaluated
            else f"Possible leakage: {where}: once evaluated, its test figures would be optimistic."
        )
    if val := train_val_overlap(stats):
        where = describe(val, "the train and val splits")
        found.append(
            f"Train and val overlap: {where}; validation figures (and the epoch they chose) "
            f"may be optimistic, the test figures {'are' if evaluated else 'would be'} not "
            "affected by it."
        )
    return found


def made_at(report: schemas.EvaluationReport | None) -> str:
    """When the evaluation was made (``metrics.json``'s ``created_at``, in UTC), or "not
    recorded"; a stamp that is not ISO 8601 is shown as written."""
    stamp = report.created_at if report is not None else None
    if not stamp:
        return "not recorded"
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if when.tzinfo else f"{when:%Y-%m-%d %H:%M}"


def _whose(report: schemas.EvaluationReport) -> str:
    if report.own_data is None:  # evaluations made before the evaluator recorded it
        return ""
    if report.data_changed:
        return " (the run's own folder, whose test split changed since training)"
    return " (the run's own data)" if report.own_data else " (another folder than the run's data)"


def evaluation_lines(path: str, report: schemas.EvaluationReport | None) -> list[str]:
    """Markdown bullets on the evaluation at ``path`` (its artifact folder) that produced the
    test figures: when, on which data and how many images, with which test-time augmentation,
    and every caveat that choosing the run lists (``handoff.caveats_of``)."""
    lines = [f"- Evaluation: {code(path)} (the run's current evaluation)"]
    if report is None:
        return [*lines, "- Date, data and test-time augmentation: unknown (no metrics.json read)"]
    data = report.data_dir or "a folder not recorded"
    lines += [
        f"- Made: {made_at(report)}",
        f"- Data: {report.n_samples} test images of {code(data)}{_whose(report)}",
        f"- Test-time augmentation: {plain(report.tta or 'not recorded')}",
    ]
    caveats = handoff.caveats_of(path, report)[1]
    return lines + [f"- **Caveat**: {plain(caveat)}." for caveat in caveats]


def data_limitation(report: schemas.EvaluationReport | None) -> str:
    """The model card's first known limitation: which data the model was trained and tested on
    (the same dataset only when the evaluation says so)."""
    if report is not None and report.data_changed:
        where = (
            f"Trained on one dataset and evaluated on the test split of {code(report.data_dir)} as "
            "it was after training (not the split the run was trained beside)"
        )
    elif report is not None and report.own_data is False:
        where = f"Trained on one dataset and evaluated on the test split of {code(report.data_dir)}"
    elif report is not None and report.own_data:
        where = "Trained and evaluated on one dataset"
    else:
        where = "Trained on one dataset"
    return (
        f"- {where}; performance on other scanners, sites or populations is unknown and must "
        "be validated before clinical use."
    )


def training_provenance(run: dict) -> list[str]:
    """Markdown lines on how the run's model was made, from its records alone (for an auditor):
    when and by whom, which code (commit, tracked files changed or not, or the commit of the
    image it trained in), which sessions (a resumed run has several, each with its commit and
    CPU threads: the thread count changes the weights), where the environment is, and the
    weights' digest where recorded."""
    tags, params = run.get("tags") or {}, run.get("params") or {}
    commit = tags.get("mlflow.source.git.commit")
    dirty = tags.get(contract.GIT_DIRTY_TAG)
    made = f"commit {code(commit)}" if commit else "no commit recorded"
    if dirty == "true" and tags.get(contract.GIT_SOURCE_TAG) == contract.IMAGE_COMMIT_ENV:
        made += ", **tracked files changed** in the folder its image was built from (not recorded)"
    elif dirty == "true":
        made += f", **tracked files changed** (diff sha256 {code(tags.get(contract.GIT_DIFF_TAG))})"
    elif dirty == "false":
        made += ", no tracked file changed"
    elif dirty == "unknown" and tags.get(contract.GIT_SOURCE_TAG) == contract.IMAGE_COMMIT_ENV:
        made += " (the commit its image was built from: changes in that build unknown)"
    elif dirty == "unknown":
        made += " (not a git checkout: changes unknown)"
    lines = [
        f"- Trained: {durations.when(run.get('start_time'))} to "
        f"{durations.when(run.get('end_time'))} UTC, by "
        f"{plain(tags.get('mlflow.user', 'an unrecorded user'))}",
        f"- Code: {made}",
    ]
    try:
        sessions = json.loads(tags.get(contract.SESSIONS_TAG) or "[]")
    except json.JSONDecodeError:
        sessions = []
    recorded = [s for s in sessions if isinstance(s, dict) and s.get("recorded") is not False]
    if sessions:
        resumed = " (resumed)" if tags.get(contract.RESUMED_TAG) == "true" else ""
        last = sessions[-1].get("session") if isinstance(sessions[-1], dict) else None
        count = last if isinstance(last, int) else len(sessions)  # a long list leaves some out
        lines.append(f"- Sessions: {count}{resumed}")
        for s in recorded:
            lines.append(
                "  - "
                + plain(
                    f"session {s.get('session')} at {s.get('at')}: from epoch "
                    f"{s.get('start_epoch')}, {s.get('device')}, {s.get('threads')} CPU threads, "
                )
                + (f"commit {code(str(s['commit'])[:12])}" if s.get("commit") else "no commit")
                + f" (changed: {plain(s.get('dirty'))})"
            )
        lines.append(
            f"- Environment of each session (Python, packages, CPU, GPU): "
            f"`{contract.ENVIRONMENT_DIR}/session-<k>.json` among the run's artifacts"
        )
    elif params.get("torch_threads"):
        lines.append(f"- CPU threads: {plain(params['torch_threads'])}")
    if digest := params.get(DIGEST_KEY):
        lines.append(f"- Weights digest (sha256 of the trained weights): {code(digest)}")
    return lines
