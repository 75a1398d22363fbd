"""The trainer as `make demo`, Compose and the Kubernetes Job start it (``launcher.TRAINER``)."""

import pytest
from mlflow.tracking import MlflowClient

from launcher import MLFLOW, TRAINER
from launcher.stack import LaunchError


def test_the_trainer_started_again_continues_its_unfinished_run(pipeline, tmp_path):
    """A Job's retry after a lost pod (or `make demo` after an interrupted one) runs the same
    command: it continues the run from its checkpoint instead of starting over."""
    stack, _ = pipeline
    client = MlflowClient(stack.config.url(MLFLOW))
    args = ["--experiment", "e2e-resume", "--epochs", "2", "--ensemble", "1",
            "--batch-size", "32", "--no-progress",
            "--checkpoint-dir", str(tmp_path / "checkpoints")]  # fmt: skip
    with pytest.raises(LaunchError, match="exit code 3"):  # cut after one epoch, as if lost
        stack.run_once(TRAINER, [*args, "--max-epochs-this-session", "1"])
    (cut,) = client.search_runs([client.get_experiment_by_name("e2e-resume").experiment_id])
    assert cut.info.status == "KILLED"

    run_id = stack.run_once(TRAINER, args)

    assert run_id == cut.info.run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["pipeline.resumed"] == "true"
    assert [m.step for m in client.get_metric_history(run_id, "train_loss")] == [1, 2]
