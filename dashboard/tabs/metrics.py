"""Metrics tab: run info, params, metric summary, history charts and dataset statistics.

Metrics are named by ``readable.label`` (``epoch time (s)``, ``validation AUC``), their MLflow
keys beside the names, and figures written by ``readable.figure``, as the leaderboard does."""

import json
import math
from datetime import UTC, datetime

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from common import CATEGORICAL, metric_keys
from dashboard import alt_text, data, readable, reports
from dashboard.card_tables import class_counts, split_counts
from dashboard.context import Context
from dashboard.markup import plain
from dashboard.provenance import dataset_warnings, leakage_rows
from dashboard.reads import HISTORY_COLUMNS
from runs import schemas

MAX_POINTS = 1000  # per series in a chart; longer histories are thinned evenly
PREFERRED = ("train_loss", "val_loss", "val_accuracy", "val_auc")
RESULT_PREFIXES = (metric_keys.EVAL_PREFIX, "explain_")  # a result's figures, not a history
SERIES_COLUMNS = (*HISTORY_COLUMNS, "seconds", "run")  # a history row, and what a chart adds


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else "–"


def run_info(run: dict) -> pd.DataFrame:
    duration = "–"
    if run["start_time"] and run["end_time"]:
        duration = f"{(run['end_time'] - run['start_time']) / 1000:.1f} s"
    rows = [
        ("run id", run["run_id"]),
        ("name", run["run_name"]),
        ("status", run["status"]),
        ("start", _time(run["start_time"])),
        ("end", _time(run["end_time"])),
        ("duration", duration),
        ("parent run", run["parent_run_id"] or "–"),
    ]
    return pd.DataFrame(rows, columns=["field", "value"])


def smooth(values: pd.Series, weight: float) -> pd.Series:
    """Exponential moving average as in TensorBoard (``weight`` 0 = raw)."""
    return values.ewm(alpha=1 - weight, adjust=False).mean() if weight > 0 else values


def _series(
    hist: pd.DataFrame, names: dict[str, str], weight: float, keys: set[str] | None = None
) -> pd.DataFrame:
    """The chart's rows: each (run, metric) in step order, smoothed, thinned, with seconds since
    its first value and the run's name; only ``keys`` when given.

    Plain Python over the columns: the pandas sort, groupby and concat this replaced cost more
    than the rest of the Metrics tab (benchmarks/bench_dashboard.py).
    """
    run_ids, metric_keys = hist["run_id"].tolist(), hist["key"].tolist()
    steps, stamps = hist["step"].to_numpy(), hist["timestamp"].to_numpy()
    values = hist["value"].to_numpy()
    groups: dict[tuple[str, str], list[int]] = {}
    for i in np.lexsort((stamps, steps)).tolist():  # by step, then time; stable
        if keys is None or metric_keys[i] in keys:
            groups.setdefault((run_ids[i], metric_keys[i]), []).append(i)
    columns: dict[str, list] = {c: [] for c in SERIES_COLUMNS}
    for (run_id, key), rows in groups.items():
        own = stamps[rows]
        smoothed = smooth(pd.Series(values[rows]), weight).to_numpy()
        seconds = (own - own.min()) / 1000
        every = slice(None, None, -(-len(rows) // MAX_POINTS))  # thinned evenly to MAX_POINTS
        n = len(range(len(rows))[every])
        columns["run_id"] += [run_id] * n
        columns["key"] += [key] * n
        columns["step"] += steps[rows][every].tolist()
        columns["timestamp"] += own[every].tolist()
        columns["value"] += smoothed[every].tolist()
        columns["seconds"] += seconds[every].tolist()
        columns["run"] += [names.get(run_id, run_id[:8])] * n
    return pd.DataFrame(columns)


def history_chart(
    hist: pd.DataFrame,
    names: dict[str, str],
    x: str = "step",
    weight: float = 0.0,
    log: bool = False,
    columns: int = 3,
    keys: set[str] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """One small panel per metric (own y-axis, shared x), each run a line in every panel.

    ``hist`` has columns run_id, key, step, timestamp, value. Steps are epochs: whole ticks.
    Returns the data and a Vega-Lite spec for ``st.vega_lite_chart`` (written as a dict: Altair's
    schema validation would cost more than the rest of the page).
    """
    frame = _series(hist, names, weight, keys)
    if log:
        frame = frame[frame["value"] > 0]
    if x == "step":
        x_enc = {
            "field": "step",
            "type": "quantitative",
            "title": "epoch / step",
            "axis": {"tickMinStep": 1, "format": "d"},
        }
    else:
        x_enc = {"field": "seconds", "type": "quantitative", "title": "seconds since first value"}
    several = frame["run"].nunique() > 1
    legend = {"orient": "top", "title": None, "labelLimit": 400} if several else None
    order = list(dict.fromkeys(frame["key"]))
    frame = frame.assign(figure=[readable.figure(v) for v in frame["value"]])  # as tables write
    panel = {
        "mark": {"type": "line", "point": len(frame) < 400, "strokeWidth": 2},
        "encoding": {
            "x": x_enc,
            "y": {
                "field": "value",
                "type": "quantitative",
                "title": None,
                "scale": {"type": "log"} if log else {"zero": False},
            },
            "color": {
                "field": "run",
                "type": "nominal",
                "legend": legend,
                "scale": {"range": list(CATEGORICAL)},
            },
            # Runs differ by dash too: told apart without seeing colour (one legend for both).
            "strokeDash": {"field": "run", "type": "nominal", "legend": legend},
            "tooltip": [
                {"field": "run", "type": "nominal"},
                {"field": "key", "type": "nominal", "title": "MLflow key"},
                {"field": "step", "type": "quantitative"},
                {"field": "figure", "type": "nominal", "title": "value"},
            ],
        },
    }
    spec = {
        "facet": {
            "field": "key",
            "type": "nominal",
            "sort": order,
            "title": None,
            "header": {
                "labelFontSize": 13,
                "labelFontWeight": "bold",
                "labelExpr": panel_titles(order),
            },
        },
        "columns": min(columns, len(order)),
        "spacing": 24,
        "spec": {"layer": [panel], "width": 250, "height": 160},
        "resolve": {"scale": {"y": "independent"}, "axis": {"x": "independent"}},
    }
    return frame, spec


def panel_titles(keys: list[str]) -> str:
    """A Vega expression naming each panel (its ``datum.value``: a key) by ``readable.label``
    (``epoch time (s)``: the unit with the name), any other key as it is."""
    named = [(k, readable.label(k)) for k in keys if readable.label(k) != k]
    expr = "datum.value"
    for key, name in reversed(named):  # JSON strings are Vega string literals
        expr = f"datum.value === {json.dumps(key)} ? {json.dumps(name)} : {expr}"
    return expr


def summary_table(metrics: dict[str, float], stats: dict[str, tuple]) -> pd.DataFrame:
    """One row per metric of ``stats``, indexed by its key: its name (``readable.label``), and
    its latest, least and largest value written by ``readable.figure``, and how many values."""
    rows = [
        (readable.label(k), *map(readable.figure, (metrics.get(k), *stats[k][:2])), stats[k][2])
        for k in sorted(stats)
    ]
    return pd.DataFrame(
        rows, columns=["metric", "latest", "min", "max", "values"], index=sorted(stats)
    )


def render_metrics(ctx: Context) -> None:
    run = ctx.run
    left, right = st.columns(2)
    with left:
        st.subheader("Run")
        st.dataframe(run_info(run), hide_index=True, width="stretch")
    with right:
        st.subheader("Parameters")
        if run["params"]:
            params = pd.DataFrame(sorted(run["params"].items()), columns=["param", "value"])
            st.dataframe(params, hide_index=True, width="stretch", height=280)
        else:
            st.info("This run logged no parameters.")
    tags = {k: v for k, v in run["tags"].items() if k != "mlflow.log-model.history"}
    with st.expander(f"Tags ({len(tags)})"):
        st.dataframe(pd.DataFrame(sorted(tags.items()), columns=["tag", "value"]), hide_index=True)
    # Test-set and explanation results are single values shown in their own tabs.
    keys = tuple(k for k in sorted(run["metrics"]) if not k.startswith(RESULT_PREFIXES))
    if not keys:
        st.info(
            "This run logged no training metrics."
            + (" Its evaluation is on the Evaluation tab." if run["metrics"] else "")
        )
    else:
        hist = data.histories(ctx.uri, (ctx.run_id,), keys)
        stats = key_stats(hist)
        st.subheader("Metrics")
        st.dataframe(
            summary_table(run["metrics"], stats),
            width="stretch",
            column_config={
                "_index": st.column_config.TextColumn("MLflow key", width="medium"),
                "metric": st.column_config.TextColumn("metric", width="medium"),
            },
        )
        _single_values(run, stats)
        _charts(ctx, keys, hist, stats)
    _dataset(ctx)


def key_stats(hist: pd.DataFrame) -> dict[str, tuple[float, float, int]]:
    """Per metric of ``hist``: minimum, maximum and number of values, NaN left out (as
    pandas would; NaN, NaN, 0 for a metric of NaN only). One pass in plain Python: a pandas
    groupby of a few values costs milliseconds on every page view."""
    found: dict[str, list] = {}
    for key, value in zip(hist["key"].tolist(), hist["value"].tolist(), strict=True):
        now = found.setdefault(key, [math.nan, math.nan, 0])
        if math.isnan(value):
            continue
        if now[2] == 0:
            now[:] = [value, value, 1]
        else:
            now[:] = [min(now[0], value), max(now[1], value), now[2] + 1]
    return {key: tuple(v) for key, v in found.items()}


def _single_values(run: dict, stats: dict[str, tuple[float, float, int]]) -> None:
    """Metrics logged once (best epoch, test results...) as values, not as lone dots."""
    single = [
        k
        for k in sorted(run["metrics"])
        if k not in stats or stats[k][2] <= 1
        if not k.startswith(RESULT_PREFIXES)
    ]
    if not single:
        return
    cols = st.columns(min(6, len(single)))
    for i, key in enumerate(single[:12]):
        name = plain(readable.label(key))  # a Markdown label
        value = readable.figure(run["metrics"][key])
        cols[i % len(cols)].metric(name, value, help=f"In MLflow: {plain(key)}")


def _charts(
    ctx: Context, keys: tuple[str, ...], own: pd.DataFrame, stats: dict[str, tuple]
) -> None:
    """History panels; the widgets are keyed by run, so they follow the open run."""
    st.subheader("History")
    charted = [k for k in keys if k in stats and stats[k][2] > 1]
    if not charted:
        st.caption("Every metric of this run has a single value (shown above).")
        return
    rid = ctx.run_id
    default = [k for k in PREFERRED if k in charted] or charted[:4]
    chosen = st.multiselect(
        "Metrics to chart",
        charted,
        default=default,
        key=f"chart_metrics_{rid}",
        format_func=readable.option,
    )
    cols = st.columns(4)
    x = cols[0].radio("x axis", ["step", "time"], horizontal=True, key="chart_x")
    weight = cols[1].slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="chart_smooth")
    log = cols[2].checkbox("Log scale", key="chart_log")
    overlay = cols[3].checkbox(
        "Overlay compared runs",
        value=bool(ctx.compare_ids),
        key=f"chart_overlay_{rid}_{'-'.join(ctx.compare_ids)}",
        disabled=not ctx.compare_ids,
        help="Pick runs under “Compare with” in the sidebar; each panel then shows every run.",
    )
    if not chosen:
        st.info("Pick metrics to chart above.")
        return
    hist = own
    names = {rid: ctx.run["run_name"]}
    if overlay and ctx.compare_ids:
        others = data.histories(ctx.uri, tuple(ctx.compare_ids), tuple(chosen))
        hist = pd.concat([own, others], ignore_index=True)
        seen = st.session_state.get("seen_runs", {})
        names.update({i: seen.get(i, i[:8]) for i in ctx.compare_ids})
    frame, spec = history_chart(hist, names, x, weight, log, keys=set(chosen))
    if frame.empty:
        st.info("No values to chart.")
        return
    st.vega_lite_chart(frame, spec, width="content", alt=alt_text.history(frame))


def _leakage(typed: schemas.DatasetStats | None, evaluated: bool) -> None:
    if typed is None:
        return
    for warning in dataset_warnings(typed, evaluated):
        st.warning(plain(warning))
    if groups := typed.groups:
        shared = {p: v["count"] for p, v in groups.get("overlap", {}).items() if v["count"]}
        per_split = ", ".join(f"{s} {n}" for s, n in groups["per_split"].items())
        st.caption(f"Groups (patients) per split: {plain(per_split)}; shared: {shared or 'none'}")
    if not typed.leakage:
        return
    rows = leakage_rows({"leakage": typed.leakage})
    if rows.empty:
        st.caption("No duplicate images across splits (pixel hash and perceptual hash).")
        return
    st.dataframe(rows, width="stretch", hide_index=True)


def _dataset(ctx: Context) -> None:
    st.subheader("Dataset")
    stats = reports.dataset_stats(ctx.uri, ctx.run)
    counts = split_counts(ctx.run["params"], stats)
    per_class = class_counts(stats)
    if not counts and not per_class:
        st.info(
            "This run logged no dataset statistics (dataset_stats.json or data_n_* params); "
            "runs of `python -m trainer` have them."
        )
        return
    if counts:
        st.dataframe(pd.DataFrame([counts], index=["samples"]), width="stretch")
    if per_class:
        frame = pd.DataFrame(
            [(s, c, n) for s, cls in per_class.items() for c, n in cls.items()],
            columns=["split", "class", "count"],
        )
        chart = (
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("class:N", axis=alt.Axis(labelAngle=0)),
                y="count:Q",
                color=alt.Color(
                    "split:N", sort=list(per_class), scale=alt.Scale(range=list(CATEGORICAL))
                ),
                xOffset=alt.XOffset("split:N", sort=list(per_class)),
            )
            .properties(height=260, title="Class distribution")
        )
        words = alt_text.counts(frame, "split", "class", "count", "Class distribution per split")
        st.altair_chart(chart, width="stretch", alt=words)
    _leakage(stats, reports.has_evaluation(ctx.run))
