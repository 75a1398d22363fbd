"""Compare tab: 2–4 runs side by side (metrics with the better value marked, whether their test
figures really differ: ``compare_paired``, confusion matrices and ROC curves next to each other,
parameters that really differ, curves in panels).

Metrics are named by ``readable.label`` beside their MLflow keys, and written by
``readable.figure``, as the leaderboard and the other tabs write them."""

import math
from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from common import NotFound, PipelineError
from dashboard import alt_text, data, leaderboard, readable, reports
from dashboard.basis import flat_note
from dashboard.context import Context
from dashboard.markup import code, plain
from dashboard.notes import notes as table_notes
from dashboard.tabs.compare_paired import column, render_paired
from dashboard.tabs.metrics import RESULT_PREFIXES, history_chart
from runs import contract, schemas

PLOTS = ((contract.CONFUSION_MATRIX_PNG, "Confusion matrices"), (contract.ROC_CURVES_PNG, "ROC"))
METRIC = "metric"  # the metrics table's column of names
PARAMETER = "parameter"  # the parameters table's column of names
ARROWS = {"higher is better": "↑", "lower is better": "↓"}  # a metric's row, said in LEGEND
LEGEND = "↑ higher is better, ↓ lower is better."


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
    """Rows = parameters indexed by their MLflow keys, a ``parameter`` column naming them
    (``readable.label``), then a column per run (``param_value``); with ``only_different``
    those whose values differ (values that are the same path written differently count as
    equal)."""
    keys = sorted({k for r in runs for k in r["params"]})
    rows = {}
    for key in keys:
        values = [r["params"].get(key) for r in runs]
        same = all(equivalent(values[0], v) for v in values[1:])
        if only_different and same and len(runs) > 1:
            continue
        rows[key] = [readable.label(key), *("–" if v is None else param_value(v) for v in values)]
    columns = [PARAMETER, *(column(r) for r in runs)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def param_value(value: str) -> str:
    """A parameter as logged, or ``readable.figure`` of it when that rounds it (a threshold
    chosen on validation, 0.24369, reads 0.2437 as everywhere else; a setting such as 0.001 is
    left as it was typed)."""
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value
    shown = readable.figure(number)
    return shown if float(shown) != number else value


def metrics_table(runs: list[dict], bases: list[leaderboard.Basis]) -> pd.DataFrame:
    """Rows = metrics (intervals folded in) indexed by their MLflow keys, a ``metric`` column
    naming them (``row_label``), then a column per run; ``leaderboard.cells``: ``★`` on the
    better value where the figures rank like for like, ``†`` and why on a test figure that does
    not (``bases``: what each run's evaluation was measured on)."""
    keys = leaderboard.metric_columns(runs)
    rows = {key: [row_label(key), *leaderboard.cells(runs, key, bases)] for key in keys}
    columns = [METRIC, *(column(r) for r in runs)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def row_label(key: str) -> str:
    """``test ECE ↓``, ``validation AUC ↑`` (``LEGEND``: short enough for the column at
    1366 px), ``learning rate`` (``readable.label``); a key without a name says its split
    (``val_x (validation) ↑``), which a name says itself."""
    name = readable.label(key)
    if not leaderboard.ranked(key):
        return name
    split = leaderboard.trainer_split(key) if name == key else None
    way = leaderboard.direction(key)
    return f"{name}{f' ({split})' if split else ''} {ARROWS.get(way, f'({way})')}"


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
        f"Latest values; value (95 % interval) when logged; {code('eval_*')} of the most "
        f"probable class (argmax), {code('eval_thr_*')} of a two-class run's served threshold. "
        f"{leaderboard.BEST} better: a test "
        f"figure ({code('eval_*')}) only among evaluations of the same test data without test-time "
        "augmentation; training and validation figures get none (validation is the split "
        f"that chose each run's epoch, often small: not a test). {LEGEND}"
    )
    if not leaderboard.comparable(runs):
        st.warning(
            f"These runs predict different classes: their metrics do not rank against each "
            f"other, so no {leaderboard.BEST} is given."
        )
    measured = bases(ctx, runs)
    for note in table_notes(measured):
        st.warning(note)
    if flat := flat_note(measured):
        st.warning(flat)
    st.dataframe(
        metrics_table(runs, measured).style.map(style),
        width="stretch",
        column_config={
            "_index": st.column_config.TextColumn("MLflow key"),
            METRIC: st.column_config.TextColumn(METRIC, width="medium"),
        },
    )
    try:
        render_paired(ctx, runs)
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
        st.dataframe(
            params.astype(str),
            width="stretch",
            column_config={"_index": st.column_config.TextColumn("MLflow key")},
        )
    _curves(ctx, runs)


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
    keys = st.multiselect(
        "Metrics", shared, default=default, key="compare_metrics", format_func=readable.option
    )
    if not keys:
        return
    ids = tuple(r["run_id"] for r in runs)
    hist = data.histories(ctx.uri, ids, tuple(keys))
    names = {r["run_id"]: r["run_name"] for r in runs}
    frame, spec = history_chart(hist, names)
    st.vega_lite_chart(frame, spec, width="content", alt=alt_text.history(frame))
