"""Compare tab: the selected runs side by side (params that differ, metrics, overlaid curves)."""

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.context import Context
from dashboard.tabs.metrics import history_chart


def side_by_side(runs: list[dict], field: str, only_different: bool) -> pd.DataFrame:
    """Rows = keys of ``field`` (params or metrics), columns = run names."""
    table = pd.DataFrame(
        {f"{r['run_name']} ({r['run_id'][:6]})": r[field] for r in runs}
    ).sort_index()
    if only_different and len(runs) > 1 and not table.empty:
        differs = table.astype(str).nunique(axis=1, dropna=False) > 1
        table = table[differs]
    return table


def render_compare(ctx: Context) -> None:
    if not ctx.compare_ids:
        st.info("Pick runs under “Compare with” in the sidebar to see them next to this one.")
        return
    runs = [ctx.run, *(data.run(ctx.uri, i) for i in ctx.compare_ids)]
    only = st.toggle("Only params that differ", value=True, key="compare_only_diff")
    st.subheader("Parameters")
    params = side_by_side(runs, "params", only)
    if params.empty:
        st.caption("All parameters are equal." if only else "No parameters logged.")
    else:
        st.dataframe(params.astype(str), width="stretch")
    st.subheader("Metrics (latest)")
    st.dataframe(side_by_side(runs, "metrics", False), width="stretch")
    shared = sorted(set.intersection(*(set(r["metrics"]) for r in runs)))
    if not shared:
        st.caption("These runs share no metric to chart.")
        return
    default = "val_auc" if "val_auc" in shared else shared[0]
    key = st.selectbox("Metric curve", shared, index=shared.index(default), key="compare_metric")
    ids = tuple(r["run_id"] for r in runs)
    hist = data.histories(ctx.uri, ids, (key,))
    names = {r["run_id"]: r["run_name"] for r in runs}
    st.altair_chart(history_chart(hist, names, "step", 0.0, False), width="stretch")
