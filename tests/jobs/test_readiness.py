"""``/ready`` answers within the probes' time, naming each check that had not answered by then."""

import sqlite3
import threading

import requests

import jobs.readiness
from jobs.readiness import READY_WITHIN_S
from tests.conftest import LiveServer
from tests.jobs.conftest import make_settings, make_toy_app

PROBE_TIMEOUT_S = 4.5  # what the k8s readiness probes wait for /ready (k8s/evaluator.yaml)


def test_a_hung_mlflow_and_a_store_whose_write_lock_is_held_are_named_in_time(
    tmp_path, monkeypatch
):
    # In turn, or waited out, these would take the hang's 30 s and the lock's 10 s.
    released = threading.Event()
    hang = lambda uri: released.wait(30)  # noqa: E731  past requests' own timeout, as DNS can
    monkeypatch.setattr(jobs.readiness, "_mlflow_check", hang)
    mlflow = "http://mlflow.invalid:5000"
    settings = make_settings(tmp_path, mlflow_tracking_uri=mlflow)
    with LiveServer(make_toy_app(settings)) as live:
        holder = sqlite3.connect(tmp_path / "store" / "mlpipeline.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's long write
        try:
            ready = requests.get(f"{live.url}/ready", timeout=PROBE_TIMEOUT_S)
            health = requests.get(f"{live.url}/health", timeout=PROBE_TIMEOUT_S)
        finally:
            released.set()
            holder.execute("ROLLBACK")
            holder.close()
    assert ready.status_code == 503
    detail = ready.json()["detail"]
    assert f"MLflow tracking server at {mlflow} did not answer within {READY_WITHIN_S:g}" in detail
    assert f"did not take a write within {READY_WITHIN_S:g} s" in detail
    assert "another process holds its write lock" in detail
    assert health.status_code == 200
