"""The sidebar: tracking URI, experiment, run picker (sort, filter, pages) and runs to compare."""

from dataclasses import replace
from datetime import UTC, datetime

import streamlit as st

from common import PipelineError, Settings
from dashboard import data
from dashboard.context import Context
from dashboard.reads import RUN_STATUSES, RunQuery

PAGE_SIZES = (10, 25, 50, 100, 200)


def _label(row: dict, sort_key: str) -> str:
    prefix = "↳ " if row["parent_run_id"] else ""
    extra = ""
    if sort_key.startswith("metrics."):
        value = row["metrics"].get(sort_key.split(".", 1)[1].strip("`"))
        extra = f" · {value:.4g}" if value is not None else ""
    started = datetime.fromtimestamp((row["start_time"] or 0) / 1000, UTC)
    return f"{prefix}{row['run_name']} · {row['status'].lower()}{extra} · {started:%m-%d %H:%M}"


def _pick_experiment(uri: str) -> tuple[str, str] | None:
    exps = data.experiments(uri)
    if not exps:
        st.sidebar.info("This tracking server has no experiments yet: train a model first.")
        return None
    # The Default experiment is usually empty: prefer the most recently updated other one.
    exps = sorted(exps, key=lambda e: e["name"] == "Default")
    names = {e["experiment_id"]: e["name"] for e in exps}
    exp_id = st.sidebar.selectbox(
        "Experiment (type to search)",
        list(names),
        format_func=lambda i: names[i],
        key="experiment_id",
    )
    return exp_id, names[exp_id]


def _run_query(exp_id: str, known_keys: list[str]) -> RunQuery:
    with st.sidebar.expander("Sort and filter runs"):
        name = st.text_input("Name contains", key="run_name_filter")
        statuses = st.multiselect("Status", RUN_STATUSES, key="run_status_filter")
        expr = st.text_input(
            "Filter (MLflow syntax)",
            key="run_filter",
            placeholder="metrics.val_auc > 0.8 and params.model = 'smallcnn'",
        )
        sort_options = ["attributes.start_time", "attributes.run_name", *known_keys]
        sort_key = st.selectbox("Sort by", sort_options, key="run_sort")
        descending = st.toggle("Descending", value=True, key="run_desc")
        page_size = st.selectbox("Runs per page", PAGE_SIZES, index=2, key="run_page_size")
    order = f"{sort_key} {'DESC' if descending else 'ASC'}"
    return RunQuery(exp_id, name, tuple(statuses), expr, order, page_size)


def _page_token(query: RunQuery) -> str | None:
    """The token of the page shown; resets to the first page when the query changes."""
    signature = repr(query)
    if st.session_state.get("run_query") != signature:
        st.session_state.run_query = signature
        st.session_state.page_tokens = [None]
    return st.session_state.page_tokens[-1]


def _pager(next_token: str | None) -> None:
    tokens = st.session_state.page_tokens
    left, mid, right = st.sidebar.columns([1, 1, 1])
    if left.button("◀ Prev", disabled=len(tokens) == 1, key="page_prev"):
        tokens.pop()
        st.rerun()
    mid.caption(f"page {len(tokens)}")
    if right.button("Next ▶", disabled=next_token is None, key="page_next"):
        tokens.append(next_token)
        st.rerun()


def render_sidebar() -> Context | None:
    """Draw the sidebar; ``None`` (after saying why) when there is no run to show."""
    settings = Settings()
    st.sidebar.title("MLpipeline")
    uri = st.sidebar.text_input(
        "MLflow tracking URI",
        value=settings.mlflow_tracking_uri,
        key="tracking_uri",
        help="Servers that need credentials: set MLFLOW_TRACKING_USERNAME/PASSWORD or "
        "MLFLOW_TRACKING_TOKEN for the dashboard process.",
    ).strip()
    if not uri.startswith(("http://", "https://", "sqlite:", "file:", "databricks")):
        st.error(
            f"{uri!r} is not a tracking URI: use http(s)://host:port, sqlite:///path.db or "
            "file:///path."
        )
        return None
    try:
        data.tracking_reachable(uri)
        picked = _pick_experiment(uri)
        if picked is None:
            return None
        exp_id, exp_name = picked
        first = data.runs_page(uri, RunQuery(exp_id))
        known = sorted({f"metrics.`{k}`" for r in first.rows for k in r["metrics"]}) + sorted(
            {f"params.`{k}`" for r in first.rows for k in r["params"]}
        )
        query = _run_query(exp_id, known)
        page = data.runs_page(uri, replace(query, page_token=_page_token(query)))
    except PipelineError as exc:
        st.error(str(exc))
        return None
    if not page.rows:
        st.sidebar.info("No runs match.")
        st.info(
            f"Experiment {exp_name!r} has no runs matching the filter: change the filter, or "
            "train one with `python -m trainer --data-dir DIR --experiment NAME`."
        )
        return None
    rows = {r["run_id"]: r for r in page.rows}
    run_id = st.sidebar.selectbox(
        "Run",
        list(rows),
        format_func=lambda i: _label(rows[i], query.order_by.rsplit(" ", 1)[0]),
        key="run_id",
    )
    _pager(page.next_token)
    seen = st.session_state.setdefault("seen_runs", {})
    seen.update({i: r["run_name"] for i, r in rows.items()})
    kept = [i for i in st.session_state.get("compare_ids", []) if i in seen]
    compare = st.sidebar.multiselect(
        "Compare with",
        list(dict.fromkeys([*kept, *(i for i in rows if i != run_id)])),
        format_func=lambda i: seen.get(i, i[:8]),
        key="compare_ids",
    )
    st.sidebar.caption(f"Run id `{run_id}`")
    return Context(settings, uri, exp_id, exp_name, rows[run_id], compare, page.rows)
