"""``/ready`` answers within the probes' time, naming each check that had not answered by then."""

import socket
import sqlite3

import requests

from jobs.readiness import READY_WITHIN_S
from runs import check_tracking  # noqa: F401  imported by the services' warm-up; a toy has none
from tests.conftest import LiveServer
from tests.jobs.conftest import make_settings, make_toy_app

PROBE_TIMEOUT_S = 4.5  # what the k8s readiness probes wait for /ready (k8s/evaluator.yaml)


def test_a_hung_mlflow_and_a_store_whose_write_lock_is_held_are_named_in_time(tmp_path):
    # One after the other, MLflow's 3 s timeout and the store's 10 s wait for its lock: 13 s.
    with socket.socket() as silent:  # accepts connections, never answers: MLflow hung
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hung = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = make_settings(tmp_path, mlflow_tracking_uri=hung)
        with LiveServer(make_toy_app(settings)) as live:
            store_file = tmp_path / "store" / "mlpipeline.sqlite3"
            holder = sqlite3.connect(store_file, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another process's long write
            try:
                ready = requests.get(f"{live.url}/ready", timeout=PROBE_TIMEOUT_S)
                health = requests.get(f"{live.url}/health", timeout=PROBE_TIMEOUT_S)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
    assert ready.status_code == 503
    detail = ready.json()["detail"]
    assert f"MLflow tracking server at {hung}" in detail
    assert f"did not take a write within {READY_WITHIN_S:g} s" in detail
    assert "another process holds its write lock" in detail
    assert health.status_code == 200
