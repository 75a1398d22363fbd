"""Evaluation tab: metrics with confidence intervals, plots, misclassified samples, raw data."""

import altair as alt
import streamlit as st

from dashboard import data
from dashboard.context import Context, missing
from dashboard.model_card import evaluation_table
from dashboard.reads import PREVIEW_BYTES
from dashboard.tabs.job_ui import job_button
from runs import contract

PLOTS = (
    ("confusion_matrix.png", "Confusion matrix"),
    ("roc_curves.png", "ROC curves"),
    ("calibration.png", "Calibration"),
)


def interval_chart(table):
    base = alt.Chart(table).encode(y=alt.Y("metric:N", sort=None, title=None))
    x = alt.X("value:Q", scale=alt.Scale(domain=[0, 1]), title="value and 95% interval")
    bars = base.mark_bar(opacity=0.7).encode(x=x)
    if table["ci_low"].notna().any():
        bars += base.mark_errorbar(thickness=2).encode(
            x=alt.X("ci_low:Q", title="value and 95% interval"), x2="ci_high:Q"
        )
    return bars.properties(height=28 * len(table) + 40)


def current_prefix(ctx: Context) -> str:
    """``<folder>/`` of the run's current evaluation (the tag's folder, else ``evaluation/``)."""
    return contract.evaluation_dir(ctx.run.get("tags")) + "/"


def render_evaluation(ctx: Context) -> None:
    job_button(ctx, "evaluate", "Evaluate this run")
    prefix = current_prefix(ctx)
    paths = data.artifact_paths(ctx.uri, ctx.run_id)
    metrics_json = data.artifact_json(ctx.uri, ctx.run_id, prefix + "metrics.json")
    table = evaluation_table(
        ctx.run["metrics"], metrics_json if isinstance(metrics_json, dict) else None
    )
    if table.empty and not any(p.startswith(prefix) for p in paths):
        missing(
            "evaluation",
            f"press Evaluate above or run `python -m evaluator --run-id {ctx.run_id}`.",
        )
        return
    if not table.empty:
        st.subheader("Test-set metrics (95% confidence intervals)")
        overall, per_class = table[table["overall"]], table[~table["overall"]]
        st.dataframe(overall.drop(columns="overall"), hide_index=True, width="stretch")
        st.altair_chart(interval_chart(overall), width="stretch")
        if not per_class.empty:
            with st.expander(f"Per-class metrics ({len(per_class)})"):
                st.dataframe(per_class.drop(columns="overall"), hide_index=True, width="stretch")
    # The confusion matrix holds two panels (counts, normalized): it gets a whole row.
    cols = [st.container(), *st.columns(len(PLOTS) - 1)]
    for col, (name, title) in zip(cols, PLOTS, strict=True):
        with col:
            st.markdown(f"**{title}**")
            if prefix + name in paths:
                st.image(data.artifact_bytes(ctx.uri, ctx.run_id, prefix + name))
            else:
                st.caption(f"no {prefix}{name}")
    _misclassified(ctx, paths, prefix)
    if prefix + "predictions.csv" in paths and st.toggle("Show raw predictions", key="eval_raw"):
        st.dataframe(
            data.artifact_csv(ctx.uri, ctx.run_id, prefix + "predictions.csv", PREVIEW_BYTES),
            width="stretch",
        )
        if metrics_json is not None:
            st.json(metrics_json, expanded=False)


def _misclassified(ctx: Context, paths: set[str], prefix: str) -> None:
    st.subheader("Most confidently misclassified")
    csv = prefix + "misclassified_top5.csv"
    if csv in paths:
        st.dataframe(data.artifact_csv(ctx.uri, ctx.run_id, csv), hide_index=True)
    images = sorted(p for p in paths if p.startswith(prefix + "misclassified/"))
    if not images and csv not in paths:
        st.caption("The evaluation logged no misclassified samples.")
        return
    cols = st.columns(min(5, max(1, len(images))))
    for i, path in enumerate(images[:10]):
        cols[i % len(cols)].image(
            data.artifact_bytes(ctx.uri, ctx.run_id, path), caption=path.rsplit("/", 1)[-1]
        )
