import os
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow


def test_torchrun_two_cpu_processes_log_one_run(trainer_argv, mlflow_server):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(free_port()), "-m", "trainer",
        *trainer_argv("--epochs", "1", "--device", "cpu", experiment="ddp"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run_ids = [line for line in result.stdout.split() if len(line) == 32]
    assert len(run_ids) == 1, "only rank 0 prints the run id"
    client = MlflowClient(mlflow_server)
    run = client.get_run(run_ids[0])
    assert run.data.params["world_size"] == "2"
    assert [m.step for m in client.get_metric_history(run_ids[0], "val_auc")] == [1]
    experiment = client.get_experiment_by_name("ddp")
    assert len(client.search_runs([experiment.experiment_id])) == 1, "only rank 0 logs"
