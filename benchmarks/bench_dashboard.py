"""Dashboard benchmark: rendering the page for an experiment of 2,000 runs, cold and warm cache,
against one ``search_runs`` call for 100 runs on the same store, measured side by side.

The page (``dashboard/dashboard.py`` under Streamlit's ``AppTest``, Metrics tab, newest run
selected) lists experiments, searches one page of runs, and loads the selected run's metric
histories and artifact list; goal: at most 3× the single search (ratio ≥ 0.33). "Cold" clears
Streamlit's caches before each render; "warm" renders again with them filled. The runs are
created in bulk (``log_batch``) on a SQLite tracking store.
"""

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result
from common import get_settings

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "dashboard.py")
GOAL = "ratio ≥ 0.33 (page ≤ 3× the search)"


def _make_store(tmp: Path, n_runs: int) -> tuple[str, str]:
    """A SQLite store holding one experiment of ``n_runs`` runs: ``(tracking_uri, exp_id)``."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("bench-dashboard", artifact_location=str(tmp / "artifacts"))
    now = int(time.time() * 1000)
    for i in range(n_runs):
        run = client.create_run(exp, run_name=f"run-{i:04d}", start_time=now + i)
        client.log_batch(
            run.info.run_id,
            metrics=[
                Metric(k, 1.0 / (1 + s + i), now + s, s)
                for k in ("val_auc", "train_loss")
                for s in range(5)
            ],
            params=[Param("model", "smallcnn"), Param("lr", str(1e-3 * (1 + i % 7)))],
        )
        client.set_terminated(run.info.run_id)
    return uri, exp


def _render(exp_id: str) -> float:
    """Render the page once under ``AppTest``; returns the seconds the page's script took.

    Only ``render_page`` is timed: ``AppTest.run`` itself also rescans every installed package
    for Streamlit components (about 0.5 s here), work that ``streamlit run`` does once at start.
    """
    from streamlit.testing.v1 import AppTest

    import dashboard.page

    render, took = dashboard.page.render_page, []

    def timed() -> None:
        start = time.perf_counter()
        try:
            render()
        finally:
            took.append(time.perf_counter() - start)

    dashboard.page.render_page = timed  # dashboard.py imports it afresh on every run
    try:
        at = AppTest.from_file(APP, default_timeout=300)
        at.session_state["experiment_id"] = exp_id
        at.run()
    finally:
        dashboard.page.render_page = render
    if at.exception or at.error:
        raise RuntimeError(f"the page failed: {[e.value for e in (*at.exception, *at.error)]}")
    return took[0]


def _compare(ours, reference, repeat: int) -> tuple[float, float]:
    """Best of ``repeat`` alternating measurements: ``ours()`` returns its own time."""
    a, b = [], []
    for _ in range(repeat):
        a.append(ours())
        start = time.perf_counter()
        reference()
        b.append(time.perf_counter() - start)
    return min(a), min(b)


def run(quick: bool = False) -> list[Result]:
    import streamlit as st
    from mlflow.tracking import MlflowClient

    n_runs, repeat = (60, 1) if quick else (2000, 5)
    with tempfile.TemporaryDirectory() as tmp:
        uri, exp = _make_store(Path(tmp), n_runs)
        old = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = uri
        get_settings.cache_clear()  # the page reads settings once per process: make it see uri
        try:
            client = MlflowClient(uri)

            def search() -> None:
                client.search_runs([exp], max_results=100)

            search()
            _render(exp)  # imports and Streamlit's first-run work are not part of a page view

            def cold() -> float:
                st.cache_data.clear()
                return _render(exp)

            cold_s, ref_cold = _compare(cold, search, repeat)
            _render(exp)
            warm_s, ref_warm = _compare(lambda: _render(exp), search, repeat)
        finally:
            if old is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = old
            get_settings.cache_clear()
    name = f"page render, {n_runs} runs"
    note = "script time of one page view vs one search_runs(max_results=100), same SQLite store"
    return [
        Result(f"{name}, cold cache", cold_s, ref_cold, "s", GOAL, note),
        Result(f"{name}, warm cache", warm_s, ref_warm, "s", GOAL, note),
    ]


if __name__ == "__main__":
    from benchmarks.common import format_table

    print(format_table(run(quick=True)))
