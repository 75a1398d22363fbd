"""Metrics tab: run info, params, metric summary, history charts and dataset statistics."""

from datetime import UTC, datetime

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.context import Context
from dashboard.model_card import class_counts, split_counts

MAX_POINTS = 1000  # per series in a chart; longer histories are thinned evenly
PREFERRED = ("train_loss", "val_loss", "val_accuracy", "val_auc")


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


def thin(frame: pd.DataFrame, limit: int = MAX_POINTS) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    every = -(-len(frame) // limit)
    return frame.iloc[::every]


def history_chart(hist: pd.DataFrame, names: dict[str, str], x: str, weight: float, log: bool):
    """An Altair chart of histories (columns run_id, key, step, timestamp, value)."""
    parts = []
    one_run = hist["run_id"].nunique() == 1
    for (run_id, key), group in hist.sort_values(["step", "timestamp"]).groupby(
        ["run_id", "key"], sort=False
    ):
        group = group.copy()
        group["value"] = smooth(group["value"], weight)
        group["seconds"] = (group["timestamp"] - group["timestamp"].min()) / 1000
        group["series"] = key if one_run else f"{names.get(run_id, run_id[:8])} · {key}"
        parts.append(thin(group))
    frame = pd.concat(parts, ignore_index=True)
    x_field = "step:Q" if x == "step" else "seconds:Q"
    y_scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    if log:
        frame = frame[frame["value"] > 0]
    return (
        alt.Chart(frame)
        .mark_line(point=len(frame) < 200)
        .encode(
            x=alt.X(x_field, title="step" if x == "step" else "seconds since first value"),
            y=alt.Y("value:Q", scale=y_scale),
            color=alt.Color(
                "series:N", legend=alt.Legend(orient="bottom", columns=2, labelLimit=400)
            ),
            tooltip=["series", "step", "value"],
        )
        .properties(height=320)
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
    keys = tuple(sorted(run["metrics"]))
    if not keys:
        st.info("This run logged no metrics.")
    else:
        hist = data.histories(ctx.uri, (ctx.run_id,), keys)
        st.subheader("Metrics")
        summary = hist.groupby("key")["value"].agg(["last", "min", "max", "count"])
        summary["latest"] = pd.Series(run["metrics"])
        summary = summary.rename(columns={"count": "values"})[["latest", "min", "max", "values"]]
        st.dataframe(
            summary,
            width="stretch",
            column_config={"_index": st.column_config.TextColumn("metric", width="large")},
        )
        _charts(ctx, keys, hist)
    _dataset(ctx)


def _charts(ctx: Context, keys: tuple[str, ...], own: pd.DataFrame) -> None:
    st.subheader("History")
    charted = [k for k in keys if (own["key"] == k).sum() > 1] or list(keys)
    default = [k for k in PREFERRED if k in charted] or charted[:2]
    chosen = st.multiselect("Metrics to chart", charted, default=default, key="chart_metrics")
    cols = st.columns(4)
    x = cols[0].radio("x axis", ["step", "time"], horizontal=True, key="chart_x")
    weight = cols[1].slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="chart_smooth")
    log = cols[2].checkbox("Log scale", key="chart_log")
    overlay = cols[3].checkbox(
        "Overlay compared runs", value=bool(ctx.compare_ids), key="chart_overlay"
    )
    if not chosen:
        return
    hist = own[own["key"].isin(chosen)]
    names = {ctx.run_id: ctx.run["run_name"]}
    if overlay and ctx.compare_ids:
        others = data.histories(ctx.uri, tuple(ctx.compare_ids), tuple(chosen))
        hist = pd.concat([hist, others], ignore_index=True)
        seen = st.session_state.get("seen_runs", {})
        names.update({i: seen.get(i, i[:8]) for i in ctx.compare_ids})
    if hist.empty:
        st.info("No values to chart.")
        return
    st.altair_chart(history_chart(hist, names, x, weight, log), width="stretch")


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


def _leakage(stats: dict | None) -> None:
    groups = (stats or {}).get("groups")
    if groups:
        shared = {p: v["count"] for p, v in groups.get("overlap", {}).items() if v["count"]}
        per_split = ", ".join(f"{s} {n}" for s, n in groups["per_split"].items())
        st.caption(f"Groups (patients) per split: {per_split}; shared: {shared or 'none'}")
    if not (stats or {}).get("leakage"):
        return
    rows = leakage_rows(stats)
    if rows.empty:
        st.caption("No duplicate images across splits (pixel hash and perceptual hash).")
        return
    st.warning(
        f"Possible leakage: {int(rows['images'].sum())} images have an exact or near duplicate "
        "in another split; test figures may be optimistic."
    )
    st.dataframe(rows, width="stretch", hide_index=True)


def _dataset(ctx: Context) -> None:
    st.subheader("Dataset")
    stats = data.artifact_json(ctx.uri, ctx.run_id, "dataset_stats.json")
    counts = split_counts(ctx.run["params"], stats if isinstance(stats, dict) else None)
    per_class = class_counts(stats if isinstance(stats, dict) else None)
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
                color=alt.Color("split:N", sort=list(per_class)),
                xOffset=alt.XOffset("split:N", sort=list(per_class)),
            )
            .properties(height=260, title="Class distribution")
        )
        st.altair_chart(chart, width="stretch")
    _leakage(stats if isinstance(stats, dict) else None)
