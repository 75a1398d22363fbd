"""The end of a training under an MLflow outage (``trainer.finish``): the final logging (the
model, its figures, the run FINISHED) waits out a restart of the tracking server as the epochs
do, and an outage longer than the wait ends with one line naming the command that finishes it."""

import os
import shlex
import signal
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from runs import DIGEST_KEY, MODEL_RECORD_KEY, load_classifier, weights_digest
from tests.conftest import ROOT, free_port, mlflow_command, serving

pytestmark = pytest.mark.slow

WAITING = "warning: the tracking server does not answer"


def _stopped_before_final_logging(
    argv: list[str], tmp_path: Path, last_epoch: str, **env: str
) -> tuple[subprocess.Popen, str, AbstractContextManager]:
    """A trainer of ``argv`` on an MLflow server of its own, which is stopped once the trainer
    printed ``last_epoch`` (its last epoch's line, written after that epoch's metrics): the
    trainer is held (SIGSTOP) until the server is down, so its final logging meets the outage
    from its first request. ``(process, server's URI, restart)``, ``restart()`` serving the
    same store on the same port again (a context manager)."""
    port = free_port()
    server, server_env = mlflow_command(tmp_path, port)
    uri = f"http://127.0.0.1:{port}"
    argv[argv.index("--tracking-uri") + 1] = uri
    # MLflow's client gives up on a request at once (its own retries would hide the outage)
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
           **env}  # fmt: skip
    with serving(server, uri + "/health", tmp_path / "server.log", cwd=tmp_path, env=server_env):
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainer", *argv], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for line in proc.stderr:
            if line.startswith(last_epoch):
                proc.send_signal(signal.SIGSTOP)
                break
        else:
            raise AssertionError(f"the trainer ended (exit {proc.wait()}) before {last_epoch!r}")
    proc.send_signal(signal.SIGCONT)  # the server is down now

    def restart() -> AbstractContextManager:
        return serving(server, uri + "/health", tmp_path / "again.log", cwd=tmp_path,
                       env=server_env)  # fmt: skip

    return proc, uri, restart


def _one_loadable_model(uri: str, run_id: str) -> None:
    """Run ``run_id`` is FINISHED with one LoggedModel, the one it records, which
    ``runs:/<id>/model`` resolves to and which loads with the run's weights."""
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    [model] = client.search_logged_models(
        [run.info.experiment_id], f"source_run_id = '{run_id}'"
    )  # fmt: skip
    assert run.data.params[MODEL_RECORD_KEY].split()[0] == model.model_id
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        loaded = load_classifier(f"runs:/{run_id}/model")  # MLflow resolves runs:/
    finally:
        mlflow.set_tracking_uri(before)
    assert weights_digest(loaded) == run.data.params[DIGEST_KEY]


def test_the_final_logging_waits_out_a_restart_of_the_tracking_server(trainer_argv, tmp_path):
    argv = trainer_argv("--epochs", "1")
    proc, uri, restart = _stopped_before_final_logging(argv, tmp_path, "epoch 1/1")
    seen = []
    for line in proc.stderr:  # the trainer met the outage in its final logging, and waits
        seen.append(line)
        if line.startswith(WAITING):
            break
    else:
        raise AssertionError(
            f"the trainer ended (exit {proc.wait()}) without waiting: {''.join(seen)[-3000:]}"
        )
    with restart():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        run_id = out.strip().splitlines()[-1]
        _one_loadable_model(uri, run_id)
    assert "the tracking server answers again after" in err
    assert "kept model: validation AUC" in err and "Traceback" not in err


def test_an_outage_longer_than_the_wait_names_the_command_that_finishes_the_logging(
    trainer_argv, tmp_path
):
    # an early stop at epoch 2 (no better validation loss than epoch 1's): resumed, the run
    # must not train on past it
    argv = trainer_argv("--epochs", "4", "--patience", "1", "--select", "loss", "--lr", "1")
    # JOB_RETRY_DELAY_S 0: the trainer does not wait for the server
    proc, uri, restart = _stopped_before_final_logging(
        argv, tmp_path, "early stop", JOB_RETRY_DELAY_S="0"
    )  # fmt: skip
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"error: the tracking server {uri} stopped answering while the trained model was being "
        "logged ("
    )
    folder = Path(argv[argv.index("--checkpoint-dir") + 1])
    assert f"its model is saved in the checkpoint {folder / 'last.pt'}: " in last
    assert "Traceback" not in err and WAITING not in err
    command = shlex.split(last.split("`")[1])
    assert command[:3] == ["python", "-m", "trainer"] and command[-2:] == ["--resume", "auto"]
    with restart():
        client = MlflowClient(uri)
        [run] = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
        run_id = run.info.run_id
        assert f"logs it in run {run_id} without training again" in last
        # what a try cut short in the middle of log_model leaves: a LoggedModel named model,
        # pending, with part of its files
        partial = client.create_logged_model(
            run.info.experiment_id, name="model", source_run_id=run_id
        )  # fmt: skip
        files = tmp_path / "partial"
        files.mkdir()
        (files / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
        client.log_model_artifacts(partial.model_id, str(files))
        resumed = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, capture_output=True,
                                 text=True, timeout=300)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert resumed.stdout.split()[-1] == run_id
        lines = resumed.stderr.splitlines()
        assert not [line for line in lines if line.startswith("epoch ")]  # none trained again
        _one_loadable_model(uri, run_id)
        epochs = client.get_metric_history(run_id, "best_epoch")
    assert [m.value for m in epochs] == [1]
