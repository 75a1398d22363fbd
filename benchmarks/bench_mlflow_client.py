"""MLflow client benchmark: this pipeline's client (``runs`` imported: MLflow's Databricks header
probe left out where Databricks' runtime is absent, ``runs.tracking``) against MLflow's own, with
the probe, measured side by side in this process against one real tracking server.

The workload is what the dashboard, the services and the choice CLI do most: downloading a
model's folder (24 small files in two folders, as a logged model's MLmodel, weights, examples
and ``code/``) and reading runs. The rounds alternate between the two clients, so that load on
the machine affects both alike; the figures are the medians. Goal: the probe's cost stays left
out, ratio ≥ 1.2 for CPU (measured on 2 cores: 1.53×, wall time 1.21×).
"""

import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result, free_port
from common import spawn_tethered
from launcher import MLFLOW
from launcher.stack import wait_http

GOAL = "ratio ≥ 1.2 (the probe left out)"


def _workload(uri: str, run_id: str, downloads: int) -> tuple[float, float]:
    """CPU and wall seconds of ``downloads`` downloads of the model folder and five run reads
    per download."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(downloads):
        with tempfile.TemporaryDirectory() as into:
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="model", dst_path=into, tracking_uri=uri
            )
        for _ in range(5):
            client.get_run(run_id)
    return time.process_time() - cpu, time.perf_counter() - wall


def run(quick: bool = False) -> list[Result]:
    from mlflow.tracking import MlflowClient
    from mlflow.tracking.request_header import registry
    from mlflow.tracking.request_header.databricks_request_header_provider import (
        DatabricksRequestHeaderProvider,
    )

    import runs  # noqa: F401 - this pipeline's client: leaves MLflow's Databricks probe out

    providers = registry._request_header_provider_registry._registry
    ours = [p for p in providers if not isinstance(p, DatabricksRequestHeaderProvider)]
    mlflows = [DatabricksRequestHeaderProvider(), *ours]  # MLflow's own order
    rounds, downloads = (2, 2) if quick else (7, 5)
    with tempfile.TemporaryDirectory() as tmp:
        state, port = Path(tmp), free_port()
        argv = [sys.executable, "-m", *MLFLOW.render(host="127.0.0.1", port=port, state=state)]
        log = open(state / "server.log", "w")  # noqa: SIM115 - closed below
        server = spawn_tethered(argv, cwd=state, env={**os.environ, **dict(MLFLOW.env)},
                                stdout=log, stderr=log)  # fmt: skip
        try:
            uri = f"http://127.0.0.1:{port}"
            wait_http(f"{uri}/health", timeout=120, proc=server)
            client = MlflowClient(uri)
            run_id = client.create_run(client.create_experiment("bench-client")).info.run_id
            model = state / "model"
            (model / "code").mkdir(parents=True)
            for i in range(18):
                (model / f"file{i}.json").write_text("x" * 1000)
            for i in range(6):
                (model / "code" / f"module{i}.py").write_text("y = 1\n")
            client.log_artifacts(run_id, str(model), "model")
            figures = {"ours": [], "mlflow": []}
            _workload(uri, run_id, 1)  # warm: connections, imports
            for _ in range(rounds):
                for name, chain in (("ours", ours), ("mlflow", mlflows)):
                    providers[:] = chain
                    figures[name].append(_workload(uri, run_id, downloads))
        finally:
            providers[:] = ours
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    work = f"{downloads} downloads of a 24-file model folder and {5 * downloads} run reads"
    note = f"median of {rounds} interleaved rounds; real MLflow server"
    cpu = [statistics.median(c for c, _ in figures[name]) for name in ("ours", "mlflow")]
    wall = [statistics.median(w for _, w in figures[name]) for name in ("ours", "mlflow")]
    return [
        Result(f"MLflow client CPU, {work}", *cpu, "s", GOAL, note),
        Result(f"MLflow client wall time, {work}", *wall, "s", "ratio ≥ 1.0 (no slower)", note),
    ]
