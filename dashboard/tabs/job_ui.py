"""The Evaluate / Explain buttons: submit a job, follow it with a progress bar until it ends."""

import time

import streamlit as st

from dashboard.context import Context
from dashboard.jobs import FINAL_STATUSES, JobClient, job_id, progress_fraction

MAX_WAIT_S = 30 * 60


def follow(client: JobClient, job: dict) -> dict:
    """Poll the job until it ends, showing its status; returns the last job document."""
    bar = st.progress(0.0, text=f"{client.kind} job {job_id(job)}: {job.get('status')}")
    start = time.monotonic()
    while job.get("status") not in FINAL_STATUSES and time.monotonic() - start < MAX_WAIT_S:
        job = client.get(job_id(job), wait=2)
        elapsed = time.monotonic() - start
        bar.progress(
            progress_fraction(job),
            text=f"{client.kind} job {job_id(job)}: {job.get('status')} ({elapsed:.0f} s)",
        )
    return job


def job_button(ctx: Context, kind: str, label: str) -> None:
    """A button that asks the service for ``kind`` on the selected run and shows the outcome."""
    client = JobClient(ctx.settings, kind)
    if not st.button(label, key=f"job_{kind}", type="primary"):
        return
    job = client.submit(ctx.run_id)
    job = follow(client, job)
    status = job.get("status")
    if status == "succeeded":
        st.success(f"{kind.capitalize()} job {job_id(job)} finished; reloading the run.")
        st.cache_data.clear()
        time.sleep(0.5)
        st.rerun()
    elif status == "failed":
        st.error(f"{kind.capitalize()} job {job_id(job)} failed: {job.get('error')}")
    else:
        st.warning(
            f"{kind.capitalize()} job {job_id(job)} is still {status}; it keeps running in the "
            "service. Reload this page later."
        )
