"""The page: sidebar, then one tab at a time (only the open tab loads anything)."""

import streamlit as st

from dashboard.context import render_safely
from dashboard.sidebar import render_sidebar
from dashboard.tabs.artifacts_tab import render_artifacts
from dashboard.tabs.compare import render_compare
from dashboard.tabs.deploy import render_deploy
from dashboard.tabs.evaluation import render_evaluation
from dashboard.tabs.explanations import render_explanations
from dashboard.tabs.metrics import render_metrics
from dashboard.tabs.visualizations import render_visualizations

TABS = {
    "Metrics": render_metrics,
    "Artifacts": render_artifacts,
    "Evaluation": render_evaluation,
    "Explanations": render_explanations,
    "Visualizations": render_visualizations,
    "Compare": render_compare,
    "Choose model": render_deploy,
}


def render_page() -> None:
    st.set_page_config(page_title="MLpipeline dashboard", page_icon="🩺", layout="wide")
    ctx = render_sidebar()
    if ctx is None:
        return
    run = ctx.run
    st.title(run["run_name"])
    st.caption(
        f"Experiment {ctx.experiment_name} · run `{run['run_id']}` · {run['status'].lower()}"
        + (f" · child of `{run['parent_run_id']}`" if run["parent_run_id"] else "")
    )
    tabs = st.tabs(list(TABS), key="tab", on_change="rerun")
    for (name, render), tab in zip(TABS.items(), tabs, strict=True):
        if tab.open:
            with tab:
                render_safely(name, render, ctx)
