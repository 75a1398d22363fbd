"""The sidebar: tracking URI, experiment, the open run and the runs to compare with it.

Choices survive a detour: when the URI is mistyped and corrected, or points to another server
that has the same experiment and run, they are kept (Streamlit forgets the state of widgets that
were not drawn, so the last choices are also kept under ``KEEP``).
"""

from datetime import UTC, datetime

import streamlit as st

from common import NotFound, PipelineError, get_settings, redact_uri
from dashboard import data, leaderboard
from dashboard.markup import plain

KEEP = "kept_choices"  # session key: {"experiment_id": ..., "run_id": ...} last shown
MAX_COMPARE = 3  # the open run and up to three others
# What a person may type: a tracking server. A local store (sqlite:, file:, a path) names files
# on the dashboard's machine, which anyone at the page could otherwise read, or create a database
# in: only the one the dashboard was started with (MLFLOW_TRACKING_URI) is opened so.
URI_PREFIXES = ("http://", "https://")


def _keep(name: str, value: str) -> None:
    st.session_state.setdefault(KEEP, {})[name] = value


def _restore(name: str, options: list[str]) -> None:
    """Put back the last choice of widget ``name`` when Streamlit dropped it and it still exists."""
    kept = st.session_state.get(KEEP, {}).get(name)
    if name not in st.session_state and kept in options:
        st.session_state[name] = kept
    if name in st.session_state and st.session_state[name] not in options:
        del st.session_state[name]


def session_uri(typed: str, configured: str) -> str:
    """The URI the sidebar field means: the configured one when it holds that URI as shown
    (credentials replaced by ``***``, ``common.redact_uri``), else what was typed."""
    return configured if typed in (configured, redact_uri(configured)) else typed


def tracking_uri() -> str | None:
    """The session's tracking URI from the sidebar field; ``None`` (after saying why) if bad."""
    st.sidebar.title("MLpipeline")
    configured = get_settings().mlflow_tracking_uri
    typed = st.sidebar.text_input(
        "MLflow tracking URI",
        value=redact_uri(configured),  # the page shows no credentials of the configured URI
        key="tracking_uri",
        help="Every tab, download and selection of this session uses it. Servers that need "
        "credentials: set MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN for the "
        "dashboard process.",
    ).strip()
    uri = session_uri(typed, configured)
    if uri != configured and not uri.startswith(URI_PREFIXES):
        st.error(
            f"{plain(repr(redact_uri(uri[:200])))} is not a tracking server's URI: use "
            "http(s)://host:port. A local store (sqlite:, file:, a path) is opened only as the "
            "dashboard's own MLFLOW_TRACKING_URI, set where it is started."
        )
        return None
    return uri


def refresh() -> None:
    """The sidebar's Refresh button, which clears the dashboard's cached MLflow reads (kept
    ``data.TTL`` seconds), and how old the page's data may be."""
    if st.sidebar.button(
        "Refresh",
        key="refresh_data",
        help="Read runs, evaluations and the registry from MLflow again now, e.g. after an "
        "evaluation made outside the dashboard.",
    ):
        data.clear_reads()
    st.sidebar.caption(
        f"Runs, evaluations and the chosen model may be up to {data.TTL} s old: Refresh reads "
        "them again."
    )


def pick_experiment(uri: str) -> tuple[str, str] | None:
    """The experiment picker; ``None`` when the server has none (after saying so)."""
    data.tracking_reachable(uri)
    exps = data.experiments(uri)
    if not exps:
        st.sidebar.info("This tracking server has no experiments yet: train a model first.")
        return None
    # The experiment holding the newest run comes first (reads.list_experiments), the Default
    # one too when someone trains there.
    names = {e["experiment_id"]: e["name"] for e in exps}
    _restore("experiment_id", list(names))
    exp_id = st.sidebar.selectbox(
        "Experiment (type to search)",
        list(names),
        format_func=lambda i: names[i],
        key="experiment_id",
    )
    _keep("experiment_id", exp_id)
    return exp_id, names[exp_id]


def _label(row: dict) -> str:
    prefix = "↳ " if row["parent_run_id"] else ""
    started = datetime.fromtimestamp((row["start_time"] or 0) / 1000, UTC)
    # The id keeps labels unique: the browser sends the label back, and two runs of one name
    # started in the same minute would otherwise open the same run.
    return (
        f"{prefix}{row['run_name']} · {row['status'].lower()} · {started:%b %d %H:%M}"
        f" · {row['run_id'][:6]}"
    )


def _alias_run(uri: str, experiment_id: str, known: dict[str, dict], chosen: str | None):
    """The run the deployment alias names (``chosen``), when it is of this experiment."""
    if chosen is None:
        return None
    if chosen in known:
        return known[chosen]
    try:
        run = data.run(uri, chosen)  # one cached get_run, not on the page shown
    except PipelineError:  # deleted since, or not on this server
        return None
    return run if run["experiment_id"] == experiment_id else None


def pick_run(
    uri: str, experiment_id: str, rows: list[dict], chosen: str | None = None
) -> dict | None:
    """The open run: the one picked (sidebar or leaderboard), else the run the deployment
    alias names (``chosen``, its run id) when it is of this experiment, else the newest
    deployable run: a fresh page opens on the deployed model, not on whatever trained last.

    A picked run that is not on the leaderboard's page stays open and listed.
    """
    known = {r["run_id"]: r for r in rows}
    wanted = st.session_state.get("run_id") or st.session_state.get(KEEP, {}).get("run_id")
    gone = None
    if wanted and wanted not in known:
        try:
            run = data.run(uri, wanted)
        except NotFound as exc:  # deleted (by another user, say), or not on this server
            run, gone = None, exc
        except PipelineError:
            run = None
        if run is not None and run["experiment_id"] == experiment_id:
            known = {wanted: run, **known}
    if wanted not in known:
        # The chosen run, else the newest deployable run of the page shown (the newest of all
        # on the default first page), else one search for it.
        on_page = [r for r in rows if leaderboard.can_deploy(r)]
        default = _alias_run(uri, experiment_id, known, chosen) or (
            max(on_page, key=lambda r: r["start_time"] or 0)
            if on_page
            else data.newest_deployable(uri, experiment_id)
        )
        if default is not None:
            known = {default["run_id"]: default, **known}
            wanted = default["run_id"]
        elif known:
            wanted = next(iter(known))
        else:
            return None
    if gone is not None:  # never another run's figures in its place without a word
        st.warning(
            f"The run you had open is gone: {plain(gone)} This page now shows "
            f"{plain(known[wanted]['run_name'])} ({wanted[:8]}) instead."
        )
    st.session_state.run_id = wanted
    run_id = st.sidebar.selectbox(
        "Run (or click one in the leaderboard)",
        list(known),
        format_func=lambda i: _label(known[i]),
        key="run_id",
    )
    _keep("run_id", run_id)
    return known[run_id]


def _compare_with(ids: list[str]) -> None:
    """Callback of "Compare with the leaderboard's first 3" (before the widgets are drawn)."""
    st.session_state.compare_ids = ids


def pick_compare(run: dict, rows: list[dict]) -> list[str]:
    """Up to ``MAX_COMPARE`` other runs to compare with the open one (kept across pages)."""
    seen = st.session_state.setdefault("seen_runs", {})
    seen.update({r["run_id"]: r["run_name"] for r in rows})
    seen[run["run_id"]] = run["run_name"]
    kept = [i for i in st.session_state.get("compare_ids", []) if i in seen and i != run["run_id"]]
    if kept != st.session_state.get("compare_ids", kept):
        st.session_state.compare_ids = kept
    options = list(
        dict.fromkeys([*kept, *(r["run_id"] for r in rows if r["run_id"] != run["run_id"])])
    )
    shown = [r["run_id"] for r, _ in leaderboard.nest(rows)]  # as the table lists them
    top = [i for i in shown if i != run["run_id"]][:MAX_COMPARE]
    order = f"{st.session_state.get('run_sort', 'started')}, "
    order += "descending" if st.session_state.get("run_desc", True) else "ascending"
    st.sidebar.button(
        f"Compare with the leaderboard's first {MAX_COMPARE}",
        key="compare_top",
        on_click=_compare_with,
        args=(top,),
        help=f"The first {MAX_COMPARE} other runs of the leaderboard's page, in its order "
        f"(sorted by {order}): {', '.join(seen.get(i, '?') for i in top) or 'none'}",
    )
    chosen = st.sidebar.multiselect(
        "Compare with (up to 3 runs)",
        options,
        format_func=lambda i: f"{seen.get(i, '?')} · {i[:6]}",
        key="compare_ids",
        max_selections=MAX_COMPARE,
        # Streamlit's own "Select all" took whichever MAX_COMPARE the browser picked: the
        # button above says which it takes
        select_all=False,
    )
    st.sidebar.caption(f"Run id `{run['run_id']}`")
    return chosen
