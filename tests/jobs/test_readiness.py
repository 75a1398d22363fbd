"""``/ready`` answers within the probes' 5 s, naming a check that had not answered by then."""

import socket
import sqlite3

import requests

from jobs.readiness import READY_WITHIN_S
from runs import check_tracking  # noqa: F401  imported by the services' warm-up; a toy has none
from tests.conftest import LiveServer, unreachable_mongo
from tests.jobs.conftest import make_settings, make_toy_app

PROBE_TIMEOUT_S = 5  # timeoutSeconds of the readiness probes (k8s/*.yaml, docker-compose.yml)


def test_a_store_whose_write_lock_is_held_is_not_ready_before_the_probe_gives_up(tmp_path):
    settings = make_settings(tmp_path)
    with LiveServer(make_toy_app(settings)) as live:
        assert requests.get(f"{live.url}/ready", timeout=30).status_code == 200
        holder = sqlite3.connect(tmp_path / "store" / "mlpipeline.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's long write: the lock waits 10 s
        try:
            ready = requests.get(f"{live.url}/ready", timeout=PROBE_TIMEOUT_S)
            health = requests.get(f"{live.url}/health", timeout=PROBE_TIMEOUT_S)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert ready.status_code == 503
    assert f"did not take a write within {READY_WITHIN_S:g} s" in ready.json()["detail"]
    assert "another process holds its write lock" in ready.json()["detail"]
    assert health.status_code == 200


def test_mlflow_and_mongodb_both_down_are_named_before_the_probe_gives_up(tmp_path):
    with socket.socket() as silent:  # accepts connections, never answers: MLflow hung
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hung = f"http://127.0.0.1:{silent.getsockname()[1]}"
        mongo = unreachable_mongo().split("?")[0]  # the default server selection, 3 s
        settings = make_settings(tmp_path, mlflow_tracking_uri=hung, mongo_uri=mongo)
        with LiveServer(make_toy_app(settings)) as live:
            ready = requests.get(f"{live.url}/ready", timeout=PROBE_TIMEOUT_S)
    assert ready.status_code == 503
    detail = ready.json()["detail"]
    assert f"MLflow tracking server at {hung}" in detail
    assert f"MongoDB at {mongo}" in detail
