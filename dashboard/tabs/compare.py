"""Compare tab: 2–4 runs side by side (metrics with the better value marked, confusion matrices
and ROC curves next to each other, parameters that really differ, curves in panels)."""

from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from common import NotFound, PipelineError
from dashboard import alt_text, data, leaderboard, paired, reports
from dashboard.context import Context
from dashboard.leakage import SplitOverlap
from dashboard.markup import plain
from dashboard.notes import notes as table_notes
from dashboard.tabs.metrics import RESULT_PREFIXES, history_chart
from runs import contract, schemas

PLOTS = ((contract.CONFUSION_MATRIX_PNG, "Confusion matrices"), (contract.ROC_CURVES_PNG, "ROC"))
# The paired figures as the table names them: the accuracy paired is the argmax's (as
# eval_accuracy), not that of the decision a two-class model is served by at its threshold.
PAIRED_LABELS = {"accuracy": "accuracy (most probable class)"}


def _column(run: dict) -> str:
    return f"{run['run_name']} ({run['run_id'][:6]})"


def equivalent(a: str | None, b: str | None) -> bool:
    """Equal values, or the same path written two ways (``data`` vs ``/home/me/proj/data``)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    pa, pb = PurePosixPath(a.rstrip("/")), PurePosixPath(b.rstrip("/"))
    if pa == pb:
        return True
    short, long = sorted((pa, pb), key=lambda p: len(p.parts))
    if short.is_absolute() or not short.parts or "/" not in str(long):
        return False
    return long.parts[-len(short.parts) :] == short.parts


def params_table(runs: list[dict], only_different: bool) -> pd.DataFrame:
    """Rows = parameters, columns = runs; with ``only_different`` those whose values differ
    (values that are the same path written differently count as equal)."""
    keys = sorted({k for r in runs for k in r["params"]})
    rows = {}
    for key in keys:
        values = [r["params"].get(key) for r in runs]
        same = all(equivalent(values[0], v) for v in values[1:])
        if only_different and same and len(runs) > 1:
            continue
        rows[key] = ["–" if v is None else v for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[_column(r) for r in runs])


def metrics_table(runs: list[dict], bases: list[leaderboard.Basis]) -> pd.DataFrame:
    """Rows = metrics (intervals folded in), columns = runs; ``leaderboard.cells``: ``★`` on
    the better value where the figures rank like for like, ``†`` and why on a test figure that
    does not (``bases``: what each run's evaluation was measured on)."""
    keys = leaderboard.metric_columns(runs)
    rows = {}
    for key in keys:
        rows[row_label(key)] = leaderboard.cells(runs, key, bases)
    return pd.DataFrame.from_dict(rows, orient="index", columns=[_column(r) for r in runs])


def row_label(key: str) -> str:
    """``eval_ece (lower is better)``, ``val_auc (validation, higher is better)``; ``lr``."""
    if not leaderboard.ranked(key):
        return key
    split = leaderboard.trainer_split(key)
    return f"{key} ({f'{split}, ' if split else ''}{leaderboard.direction(key)})"


def bases(ctx: Context, runs: list[dict]) -> list[leaderboard.Basis]:
    """What each run's evaluation was measured on: its ``metrics.json`` (read for the paired
    comparison too), else (none, or it cannot be read now) its tags."""
    return [leaderboard.basis_of(run, _report(ctx, run)) for run in runs]


def _report(ctx: Context, run: dict) -> schemas.EvaluationReport | None:
    try:
        return reports.evaluation_report(ctx.uri, run) if reports.has_evaluation(run) else None
    except (PipelineError, ValueError):  # unreadable: the table shows, marked from tags
        return None


def style(value: object) -> str:
    """The CSS of a metrics cell: the better value in bold. No colour: the theme's text colour is
    the one that contrasts enough in both light and dark themes, and ★ and † say it already."""
    return "font-weight: 700" if str(value).endswith(leaderboard.BEST) else ""


def _plot(ctx: Context, run: dict, name: str) -> bytes | None:
    if not reports.has_evaluation(run):
        return None
    try:
        return data.artifact_bytes(ctx.uri, run["run_id"], reports.evaluation_path(run, name))
    except NotFound:
        return None


def render_compare(ctx: Context) -> None:
    if not ctx.compare_ids:
        st.info(
            "Pick up to three runs under “Compare with” in the sidebar to see them next to "
            "this one."
        )
        return
    runs = [ctx.run, *(data.run(ctx.uri, i) for i in ctx.compare_ids)]
    st.subheader("Metrics")
    st.caption(
        f"Latest values; value (95 % interval) when logged; eval_* of the most probable class "
        f"(argmax), eval_thr_* of a two-class run's served threshold. {leaderboard.BEST} "
        "better: a test "
        "figure (eval_*) only among evaluations of the same test data without test-time "
        "augmentation; training and validation figures get none (validation is the split "
        "that chose each run's epoch, often small: not a test)."
    )
    if not leaderboard.comparable(runs):
        st.warning(
            f"These runs predict different classes: their metrics do not rank against each "
            f"other, so no {leaderboard.BEST} is given."
        )
    measured = bases(ctx, runs)
    for note in table_notes(measured):
        st.warning(note)
    st.dataframe(metrics_table(runs, measured).style.map(style), width="stretch")
    try:
        _paired(ctx, runs)
    except Exception as exc:  # the plots and curves below must still be drawn
        st.info(f"The paired comparison could not be made ({type(exc).__name__}: {plain(exc)}).")
    for name, title in PLOTS:
        st.subheader(title)
        cols = st.columns(len(runs))
        for col, run in zip(cols, runs, strict=True):
            col.markdown(f"**{plain(run['run_name'])}**")
            image = _plot(ctx, run, name)
            if image is None:
                col.caption("not evaluated")
            else:
                words = alt_text.evaluation_plot(name, title, _report(ctx, run))
                col.image(image, width="stretch", alt=f"{run['run_name']}: {words}")
    st.subheader("Parameters")
    only = st.toggle("Only params that differ", value=True, key="compare_only_diff")
    params = params_table(runs, only)
    if params.empty:
        st.caption("All parameters are equal." if only else "No parameters logged.")
    else:
        st.dataframe(params.astype(str), width="stretch")
    _curves(ctx, runs)


def _predictions(ctx: Context, run: dict) -> pd.DataFrame | None:
    if not reports.has_evaluation(run):
        return None
    path = reports.evaluation_path(run, contract.PREDICTIONS_CSV)
    try:
        raw = data.artifact_bytes(ctx.uri, run["run_id"], path)
    except NotFound:
        return None
    return paired.read_predictions(raw)


@st.cache_data(ttl=3600, show_spinner="Bootstrapping the paired differences…")
def _differences(this: pd.DataFrame, other: pd.DataFrame) -> list[paired.Difference]:
    return paired.paired_differences(this, other)


def _paired(ctx: Context, runs: list[dict]) -> None:
    """Whether each compared run's test figures really differ from this run's."""
    this = _predictions(ctx, ctx.run)
    if this is None:
        return
    st.subheader("Is the difference real?")
    rows, notes = [], []
    for run in runs[1:]:
        other = _predictions(ctx, run)
        evaluated = [reports.evaluation_report(ctx.uri, r) for r in (ctx.run, run)]
        why = "it has no evaluation" if other is None else paired.why_not_paired(this, other)
        if why := why or paired.why_other_data(*evaluated):
            notes.append(f"{_column(run)} is not compared image by image: {why}.")
            continue
        tta = [getattr(report, "tta", None) for report in evaluated]
        # the runs' own test splits, evaluated, that share images with their training data
        pair = zip((ctx.run, run), evaluated, strict=True)
        leaked = tuple(leaderboard.basis_of(r, report).overlap for r, report in pair)
        if (tta[0] or "none") != (tta[1] or "none"):
            notes.append(
                f"{_column(run)} was evaluated with test-time augmentation {tta[1] or 'none'!r}, "
                f"this run with {tta[0] or 'none'!r}: the differences include that."
            )
        for diff in _differences(this, other):
            interval = (
                f"{diff.ci_low:+.4f} to {diff.ci_high:+.4f}" if diff.ci_low is not None else "–"
            )
            rows.append(
                {
                    "Run": _column(run),
                    "Metric": PAIRED_LABELS.get(diff.metric, diff.metric),
                    "Difference": None if diff.value is None else round(diff.value, 4),
                    "95% interval": interval,
                    "Verdict": verdict(diff, _column(ctx.run), _column(run), tta, leaked),
                }
            )
    if rows:  # said only above a comparison made
        st.caption(
            f"Other run − {plain(ctx.run['run_name'])} on the same {len(this)} test images, with "
            "paired bootstrap 95 % intervals. Accuracy here is of the most probable class "
            "(argmax, as eval_accuracy), not of the decision a two-class model is served with at "
            "its own threshold (eval_thr_*), which is not paired here. For accuracy the exact "
            "McNemar test on the images the runs get differently decides the verdict: when few "
            "images differ, the bootstrap interval is too narrow and may exclude 0 while the "
            "test finds no clear "
            "difference. Where the verdict says no clear difference, this test set cannot tell "
            "the two models apart, however the ★ falls."
        )
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for note in notes:
        st.info(plain(note))


def verdict(
    diff: paired.Difference,
    this: str,
    other: str,
    tta: list[str | None],
    leaked: tuple[SplitOverlap, SplitOverlap] = (SplitOverlap(), SplitOverlap()),
) -> str:
    """``diff.verdict`` of two evaluations of the same images, unless they were not made
    alike: ``tta`` (of ``this`` and ``other``; None: none) differs, and neither is better.

    ``leaked`` (of ``this`` and ``other``): what a run's test split shares with its training
    data (``Basis.overlap``; empty: nothing); its figures are then optimistic. Such a run is not
    called better than one without those copies: scoring higher on images it was trained on
    shows nothing. A leaked run found worse stays worse (its figures only flatter it), said with
    the caveat. Two runs sharing the very same copies (one data set, as BreastMNIST's own
    duplicates across its splits) are flattered alike: the verdict stands, with the caveat.
    """
    mine, theirs = (t or "none" for t in tta)
    if mine != theirs:
        return (
            f"not like for like: {other} was evaluated with tta {theirs!r}, {this} with "
            f"{mine!r}, and the difference includes that"
        )
    names = (this, other)
    # one data set's own copies; two runs whose leakage is unknown are not known to be alike
    alike = bool(leaked[0]) and leaked[0] == leaked[1] and not leaked[0].unknown
    better = diff.better()
    if alike:
        said = f"{diff.verdict(this, other)}; both runs' test figures are optimistic alike "
        said += f"({leaked[0].why})"
    elif better is not None and leaked[better]:
        said = (
            f"not shown better: {names[better]} scores higher, but its test figures are "
            f"optimistic ({leaked[better].why})"
        )
    else:
        said = diff.verdict(this, other)
        said += "".join(
            f"; {name}'s test figures are optimistic ({found.why})"
            for name, found in zip(names, leaked, strict=True)
            if found
        )
    if mine != "none":
        said += f" (both with tta {mine!r}, which the served models do not do)"
    return said


def _curves(ctx: Context, runs: list[dict]) -> None:
    st.subheader("Curves")
    shared = sorted(
        k
        for k in set.intersection(*(set(r["metrics"]) for r in runs))
        if not k.startswith(RESULT_PREFIXES)
    )
    if not shared:
        st.caption("These runs share no metric history to chart.")
        return
    default = [k for k in ("train_loss", "val_loss", "val_auc") if k in shared] or shared[:2]
    keys = st.multiselect("Metrics", shared, default=default, key="compare_metrics")
    if not keys:
        return
    ids = tuple(r["run_id"] for r in runs)
    hist = data.histories(ctx.uri, ids, tuple(keys))
    names = {r["run_id"]: r["run_name"] for r in runs}
    frame, spec = history_chart(hist, names)
    st.vega_lite_chart(frame, spec, width="content", alt=alt_text.history(frame))
