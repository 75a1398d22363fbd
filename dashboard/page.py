"""The page: sidebar, the experiment's leaderboard, then the open run with one tab at a time.

Only the open tab loads anything; the leaderboard is one page of ``search_runs``.
"""

from dataclasses import replace
from datetime import UTC, datetime

import streamlit as st

from common import PipelineError
from dashboard import board, data, durations, leaderboard, sidebar
from dashboard.context import Context, render_safely, session_settings
from dashboard.markup import plain
from dashboard.tabs.artifacts_tab import render_artifacts
from dashboard.tabs.compare import render_compare
from dashboard.tabs.deploy import render_deploy
from dashboard.tabs.evaluation import render_evaluation
from dashboard.tabs.explanations import render_explanations
from dashboard.tabs.metrics import render_metrics
from dashboard.tabs.visualizations import render_visualizations
from runs import contract

TABS = {
    "Metrics": render_metrics,
    "Artifacts": render_artifacts,
    "Evaluation": render_evaluation,
    "Explanations": render_explanations,
    "Visualizations": render_visualizations,
    "Compare": render_compare,
    "Choose model": render_deploy,
}


def _context() -> Context | None:
    """Sidebar and leaderboard; the context of the open run, or ``None`` after saying why not."""
    uri = sidebar.tracking_uri()
    if uri is None:
        return None
    sidebar.refresh()
    picked = sidebar.pick_experiment(uri)
    if picked is None:
        return None
    exp_id, exp_name = picked
    st.header(f"Leaderboard · {plain(exp_name)}", divider="gray")
    first = board.first_page(uri, exp_id)
    query, columns = board.query(exp_id, first)
    try:
        page = data.runs_page(uri, replace(query, page_token=board.page_token(query)))
    except PipelineError as exc:
        st.error(plain(exc))
        page = first
    settings = session_settings(uri)
    chosen = data.chosen(uri, settings.model_name, settings.model_alias)
    run = sidebar.pick_run(uri, exp_id, page.rows, chosen[1] if chosen else None)
    board.render(uri, page, columns, run["run_id"] if run else None, chosen)
    if run is None:
        return None
    compare = sidebar.pick_compare(run, page.rows)
    # The default first page often holds the open run's children: then no search for them.
    kids = leaderboard.children_on_page(first.rows, first.next_token is None, run)
    return Context(settings, exp_id, exp_name, run, compare, page.rows, kids)


def _header(ctx: Context) -> None:
    run = ctx.run
    st.title(plain(run["run_name"]))
    parent = run["parent_run_id"]
    line = (
        f"Experiment {plain(ctx.experiment_name)} · run `{run['run_id']}` · {run['status'].lower()}"
    )
    if parent:
        try:
            name = data.run(ctx.uri, parent)["run_name"]
        except PipelineError:
            name = parent[:8]
        line += f" · child of {plain(name)} (`{parent}`)"
    st.caption(line)
    ended = run["tags"].get(contract.ENDED_TAG)
    if ended and run["status"] == "KILLED":
        st.warning(f"Training did not finish: {plain(ended)}.")
    elif run["status"] == "RUNNING" and run["tags"].get(contract.STAGE_TAG) == "training":
        st.info(
            f"Training is in progress{last_report(run['tags'])}, or its trainer died without "
            "a word (kill -9, out of memory, a stopped machine): such a run shows RUNNING until "
            "the next trainer on its checkpoint folder marks it KILLED. Continue a dead one "
            "with the same command and --resume auto."
        )
    kids = ctx.children
    if kids is None:
        kids = data.children(ctx.uri, ctx.experiment_id, ctx.run_id)
    if kids:
        names = ", ".join(plain(k["run_name"]) for k in kids[:20])
        more = f" and {len(kids) - 20} more" if len(kids) > 20 else ""
        st.markdown(f"**Child runs ({len(kids)})**: {names}{more}")
        names = {k["run_id"]: k["run_name"] for k in kids}
        key = f"open_child_{ctx.run_id}"
        st.selectbox(
            "Open a child run",
            [None, *names],
            format_func=lambda i: "—" if i is None else names[i],
            key=key,
            on_change=_open_child,
            args=(key,),
        )


def last_report(tags: dict[str, str], now: datetime | None = None) -> str:
    """`` (last report: epoch 36 of 40, 23 min ago)`` from the trainer's progress tag; empty
    when there is none (a run of an older trainer, or before its first epoch)."""
    found = durations.last_report(tags)
    if found is None:
        return ""
    at, report = found
    try:
        epoch, epochs = int(report["epoch"]), int(report["epochs"])
        member, members = int(report.get("member", 1)), int(report.get("members", 1))
    except (KeyError, TypeError, ValueError):
        return ""
    minutes = max(0, round(((now or datetime.now(UTC)) - at).total_seconds() / 60))
    of = f" of member {member} of {members}" if members > 1 else ""
    return f" (last report: epoch {epoch} of {epochs}{of}, {minutes} min ago)"


def _open_child(key: str) -> None:
    if st.session_state.get(key):
        st.session_state.run_id = st.session_state[key]


def render_page() -> None:
    st.set_page_config(page_title="MLpipeline dashboard", page_icon="🩺", layout="wide")
    ctx = None
    try:
        ctx = _context()
    except PipelineError as exc:
        st.error(plain(exc))
    if ctx is None:
        return
    render_safely("Run", _header, ctx)
    tabs = st.tabs(list(TABS), key="tab", on_change="rerun")
    for (name, render), tab in zip(TABS.items(), tabs, strict=True):
        if tab.open:
            with tab:
                render_safely(name, render, ctx)
