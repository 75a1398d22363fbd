"""The Evaluate / Explain buttons: offered only where they can work, and the job's real progress.

A run that already has a result shows when it was made and a "Run again" button (``force``).
While a job runs the page shows its stage, fraction and elapsed time from the job's
``progress`` and asks the service at most once per second (``dashboard.jobs.follow``).
"""

import time
from datetime import datetime

import streamlit as st

from common import redact_uri
from dashboard import data, leaderboard
from dashboard.commands import cli_code
from dashboard.context import Context
from dashboard.jobs import Job, JobClient, follow
from dashboard.markup import plain

NOUN = {"evaluate": "evaluation", "explain": "explanation"}
SERVICE = {"evaluate": "evaluator", "explain": "explainer"}


def _key(kind: str, run_id: str) -> str:
    return f"job_{kind}_{run_id}"


def cannot_make(ctx: Context, kind: str) -> str | None:
    """Why no ``kind`` result can be made for the open run at all; None where one can."""
    if leaderboard.can_deploy(ctx.run):
        return None
    return (
        f"No {NOUN[kind]} can be made for this run: {leaderboard.why_not_deployable(ctx.run)} "
        "(the evaluator and explainer need a finished run of `python -m trainer`)."
    )


def job_controls(ctx: Context, kind: str, done_at: datetime | None, has_result: bool) -> str | None:
    """The button for ``kind`` on the open run, the date of the shown result, a running job.

    Returns how a user makes the result for this run (to show where there is none yet), or None
    where none can be made (the reason is already on the page).
    """
    noun = NOUN[kind]
    command = cli_code(ctx.settings, SERVICE[kind], ctx.run_id)
    left, right = st.columns([1, 3], vertical_alignment="center")
    if has_result:
        when = f" on {done_at:%Y-%m-%d %H:%M} UTC" if done_at else ""
        right.caption(f"Showing the {noun} made{when}.")
    if reason := cannot_make(ctx, kind):
        right.caption(reason)
        return None
    if not ctx.services_see_this_server:
        right.caption(
            f"The {noun} service reads runs from its own MLFLOW_TRACKING_URI, not from "
            f"{redact_uri(ctx.uri)}: switch back to that server to start one from here."
        )
        return f"run {command}."
    label = "Run again" if has_result else f"{kind.capitalize()} this run"
    pressed = left.button(
        label,
        key=f"job_{kind}",
        type="secondary" if has_result else "primary",
        help=f"Make a new {noun} even though one exists" if has_result else None,
    )
    client = JobClient(ctx.settings, kind)
    key = _key(kind, ctx.run_id)
    if pressed:
        st.session_state.pop(f"{key}_done", None)
        job = client.submit(ctx.run_id, force=has_result)
        st.session_state[key] = job.job_id
        _follow(client, job, key)
    elif st.session_state.get(key):  # a job started from this page that had not ended
        _follow(client, client.get(st.session_state[key]), key)
    elif finished := st.session_state.get(f"{key}_done"):  # stays until the next press
        st.success(finished)
    return f"press {label} above or run {command}."


def _follow(client: JobClient, job: Job, key: str) -> None:
    bar = st.progress(0.0, text=job.describe())

    def show(current: Job) -> None:
        fraction = current.fraction()
        bar.progress(fraction if fraction is not None else 0.0, text=current.describe())

    job = follow(client, job, show)
    noun = NOUN[client.kind]
    if job.status == "succeeded":
        del st.session_state[key]
        st.success(f"The {noun} finished ({job.describe()}); reloading the run.")
        # Said again after the rerun: the message above is gone with it, in about a second.
        st.session_state[f"{key}_done"] = f"The {noun} finished ({job.describe()})."
        data.clear_reads()
        time.sleep(0.5)
        st.rerun()
    elif job.status in ("failed", "cancelled"):
        del st.session_state[key]
        why = plain(job.error or "no reason given")
        st.error(f"The {noun} job {job.job_id} {job.status}: {why}")
    else:
        st.warning(
            f"The {noun} job {job.job_id} is still {job.status}; it keeps running in the "
            "service. Reload this page later."
        )
