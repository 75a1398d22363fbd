"""Cached MLflow reads for the page: a short TTL so new runs and evaluations show up quickly."""

import io
import json

import numpy as np
import pandas as pd
import streamlit as st

from common import PipelineError, Settings
from dashboard import handoff, ranking, reads
from dashboard.chosen_on import ChosenOn, read_chosen_on
from dashboard.reads import RunPage, RunQuery
from runs import check_tracking

TTL = 30  # seconds


@st.cache_data(ttl=10, show_spinner=False)
def tracking_reachable(uri: str) -> None:
    """Raise ``ServiceUnavailable`` when ``uri`` does not answer (cached for a few seconds)."""
    check_tracking(uri, timeout=3)


@st.cache_data(ttl=TTL, show_spinner=False)
def experiments(uri: str) -> list[dict]:
    return reads.list_experiments(uri)


@st.cache_data(ttl=TTL, show_spinner="Searching runs…")
def runs_page(uri: str, query: RunQuery) -> RunPage:
    return reads.search_runs(uri, query)


@st.cache_data(ttl=TTL, show_spinner=False)
def chosen(uri: str, model_name: str, alias: str) -> tuple[str, str] | None:
    """``(version, run_id)`` that ``model_name@alias`` names; None when none (or the registry
    cannot be read: the leaderboard then marks no run, the Choose model tab says why)."""
    settings = Settings(mlflow_tracking_uri=uri, model_name=model_name, model_alias=alias)
    try:
        return handoff.served_version(settings)
    except PipelineError:
        return None


@st.cache_data(ttl=TTL, show_spinner=False)
def chosen_on(uri: str, model_name: str, version: str, alias: str) -> ChosenOn | None:
    """What ``model_name`` ``version`` records of the evaluation it was chosen on
    (``chosen_on.read_chosen_on``), read as often as ``chosen`` is: with it, on Refresh."""
    return read_chosen_on(uri, model_name, version, alias)


@st.cache_data(ttl=TTL, show_spinner=False)
def newest_deployable(uri: str, experiment_id: str) -> dict | None:
    return reads.newest_deployable(uri, experiment_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def children(uri: str, experiment_id: str, run_id: str) -> list[dict]:
    return reads.child_runs(uri, experiment_id, run_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def logged_models(uri: str, experiment_id: str, run_id: str) -> list[dict]:
    return reads.logged_models(uri, experiment_id, run_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def run(uri: str, run_id: str) -> dict:
    return reads.load_run(uri, run_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def top_runs(
    uri: str, experiment_id: str, metric: str, k: int, higher: bool, classes: str | None
) -> ranking.Ranked:
    """``ranking.top_runs``: the runs "Download top K" lists and downloads (one search)."""
    return ranking.top_runs(uri, experiment_id, metric, k, higher, classes)


@st.cache_data(ttl=TTL, show_spinner="Loading metric histories…")
def histories(uri: str, run_ids: tuple[str, ...], keys: tuple[str, ...]) -> pd.DataFrame:
    return reads.metric_histories(uri, run_ids, keys)


@st.cache_data(ttl=TTL, show_spinner=False)
def artifacts(uri: str, run_id: str) -> list[dict]:
    return reads.list_artifacts(uri, run_id)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=200)
def artifact_bytes(uri: str, run_id: str, path: str, max_bytes: int | None = None) -> bytes:
    return reads.read_artifact(uri, run_id, path, max_bytes)


def artifact_paths(uri: str, run_id: str) -> set[str]:
    return {a["path"] for a in artifacts(uri, run_id) if not a["is_dir"]}


def artifact_json(uri: str, run_id: str, path: str) -> dict | list | None:
    """The parsed JSON artifact, or ``None`` when the run has no such file."""
    if path not in artifact_paths(uri, run_id):
        return None
    return json.loads(artifact_bytes(uri, run_id, path).decode("utf-8"))


def artifact_csv(uri: str, run_id: str, path: str, max_bytes: int | None = None) -> pd.DataFrame:
    data = artifact_bytes(uri, run_id, path, max_bytes)
    if max_bytes is not None and len(data) >= max_bytes:
        data = data[: data.rfind(b"\n") + 1]  # drop the cut-off last line
    return pd.read_csv(io.BytesIO(data))


def artifact_npz(uri: str, run_id: str, path: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(artifact_bytes(uri, run_id, path)), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


CACHED = (tracking_reachable, experiments, runs_page, chosen, chosen_on, newest_deployable,
          children, logged_models, run, top_runs, histories, artifacts, artifact_bytes)  # fmt: skip
"""Every cached read above (``clear_reads``)."""


def clear_reads() -> None:
    """Read MLflow again on the next call (the sidebar's Refresh, a finished job). Only these
    reads: ``st.cache_data.clear()`` also dropped, for every session, the Compare tab's
    bootstraps, which are keyed by the predictions themselves and never go stale."""
    for read in CACHED:
        read.clear()
