import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from common import InvalidInput, ServiceUnavailable
from runs import contract
from tests.conftest import ROOT, free_port, mlflow_command, serving
from tests.trainer.conftest import artifact_json
from tests.trainer.outage import server_stopped_during
from trainer import checkpoint, train

pytestmark = pytest.mark.slow


def _trainer(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_prints_the_run_id_as_the_last_line(trainer_argv, mlflow_server):
    result = _trainer(*trainer_argv("--epochs", "1"))
    assert result.returncode == 0, result.stderr
    [run_id] = result.stdout.strip().splitlines()  # and no "View run ... at" lines of MLflow's
    assert MlflowClient(mlflow_server).get_run(run_id).info.status == "FINISHED"


def test_a_session_cut_short_exits_3_with_the_resume_hint(trainer_argv, mlflow_server):
    result = _trainer(*trainer_argv("--epochs", "2"), "--max-epochs-this-session", "1")
    assert result.returncode == 3, result.stderr
    [run_id] = result.stdout.strip().splitlines()
    assert MlflowClient(mlflow_server).get_run(run_id).info.status == "KILLED"
    assert "continue with --resume auto" in result.stderr.strip().splitlines()[-1]


def test_a_resumed_session_cut_short_exits_3_too(trainer_argv, mlflow_server):
    argv = trainer_argv("--epochs", "3")
    first = _trainer(*argv, "--max-epochs-this-session", "1")
    assert first.returncode == 3, first.stderr
    # on another thread count: accepted, with one line of warning, and recorded
    again = _trainer(*argv, "--resume", "auto", "--max-epochs-this-session", "1", "--threads", "2")
    assert again.returncode == 3, again.stderr  # it exited 0, as if the run had finished
    assert again.stdout.split() == first.stdout.split()  # the same run
    [warning] = [line for line in again.stderr.splitlines() if "bit-identical" in line]
    assert warning.startswith("warning: run ") and "on 1 CPU threads and continues on 2" in warning
    run_id = first.stdout.split()[-1]
    run = MlflowClient(mlflow_server).get_run(run_id)
    sessions = json.loads(run.data.tags[contract.SESSIONS_TAG])
    assert [(s["session"], s["start_epoch"], s["threads"]) for s in sessions] == [
        (1, 1, 1), (2, 2, 2)
    ]  # fmt: skip
    assert run.data.tags[contract.RESUMED_TAG] == "true"
    assert run.data.params["torch_threads"] == "1"  # the first session's (params stay)
    env = artifact_json(mlflow_server, run_id, f"{contract.ENVIRONMENT_DIR}/session-2.json")
    assert env["torch_threads"] == 2


def test_sigterm_marks_the_run_killed_and_keeps_the_checkpoint(trainer_argv, mlflow_server):
    argv = trainer_argv("--epochs", "200", "--threads", "1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", *argv], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:  # once an epoch has been checkpointed
        if line.startswith("epoch 2/200"):
            break
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 143
    assert "stopped (SIGTERM); continue with --resume auto" in err and "Traceback" not in err
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("tests").experiment_id
    query = "attributes.status = 'KILLED' and params.epochs = '200'"
    assert len(client.search_runs([experiment], query)) == 1
    checkpoints = Path(argv[argv.index("--checkpoint-dir") + 1])
    assert any(checkpoints.rglob("last.pt"))


def _training(argv: list[str], until: str) -> subprocess.Popen:
    """A trainer process of ``argv`` (its stdout discarded), once it has printed a line
    starting with ``until``; ``_stop`` ends it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:
        if line.startswith(until):
            return proc
    raise AssertionError(f"the trainer ended (exit {_stop(proc)}) before {until!r}")


def _stop(proc: subprocess.Popen) -> int:
    """``kill -9`` the process (if it still runs) and close its pipe; its exit status."""
    proc.kill()
    status = proc.wait()
    proc.stderr.close()
    return status


def _holder(argv: list[str]) -> dict:
    folder = Path(argv[argv.index("--checkpoint-dir") + 1])
    return json.loads((folder / checkpoint.LOCK_NAME).read_text())


def test_a_busy_checkpoint_folder_refuses_other_trainers_naming_the_first(trainer_argv, tmp_path):
    argv = trainer_argv("--epochs", "200")
    first = _training(argv, "epoch 1/200")
    busy = Path(argv[argv.index("--checkpoint-dir") + 1])
    elsewhere = trainer_argv("--checkpoint-dir", str(tmp_path / "elsewhere"), "--epochs", "200")
    try:
        holder = _holder(argv)
        with pytest.raises(InvalidInput, match="another trainer is using the checkpoint folder"
                           ) as refused:  # fmt: skip
            train([*argv, "--resume", "auto"])  # it would continue the run being trained
        with pytest.raises(InvalidInput, match=f"using the checkpoint folder {busy} "):
            train([*elsewhere, "--resume", str(busy / "last.pt")])  # so would this, elsewhere
    finally:
        _stop(first)
    assert f"(run {holder['run_id']}, process {first.pid} on " in str(refused.value)
    assert "its own folder with --checkpoint-dir" in str(refused.value)


def test_a_run_whose_trainer_was_killed_9_is_marked_killed_until_resumed(
    trainer_argv, mlflow_server
):
    argv = trainer_argv("--epochs", "200")
    first = _training(argv, "epoch 2/200")  # checkpointed
    run_id = _holder(argv)["run_id"]
    _stop(first)  # kill -9: nothing of it can mark the run
    client = MlflowClient(mlflow_server)
    dead = client.get_run(run_id)
    assert dead.info.status == "RUNNING"
    report = json.loads(dead.data.tags[contract.PROGRESS_TAG])  # when it last reported
    assert report["epoch"] >= 2 and report["epochs"] == 200
    train(trainer_argv("--epochs", "1"))  # the next trainer on the folder: a new run
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert f"process {first.pid} on" in run.data.tags[contract.ENDED_TAG]
    folder = Path(argv[argv.index("--checkpoint-dir") + 1])
    kept = str(checkpoint.kept_path(folder, run_id))
    assert train([*argv, "--resume", kept, "--max-epochs-this-session", "1"]) == run_id
    assert contract.ENDED_TAG not in client.get_run(run_id).data.tags  # alive again (a session)


def test_unreachable_mlflow_exits_2_with_one_clear_line(tmp_path, tiny_data, unreachable_uri):
    result = _trainer(
        "--data-dir", str(tiny_data), "--experiment", "x", "--tracking-uri", unreachable_uri,
        "--checkpoint-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: MLflow tracking server at")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_data_folder_exits_2_naming_it(tmp_path, mlflow_server):
    missing = tmp_path / "absent"
    result = _trainer("--data-dir", str(missing), "--tracking-uri", mlflow_server,
                      "--checkpoint-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 2
    assert str(missing) in result.stderr and "Traceback" not in result.stderr


def test_mlflow_stopping_mid_run_exits_2_with_one_line_and_the_resume_hint(trainer_argv, tmp_path):
    argv = trainer_argv("--epochs", "200", "--threads", "1")
    # JOB_RETRY_DELAY_S 0: training does not wait for the server to come back
    proc, uri, _ = server_stopped_during(argv, tmp_path, "epoch 2/200", JOB_RETRY_DELAY_S="0")
    err = proc.stderr.read()  # the server is stopped now
    assert proc.wait(timeout=300) == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: the tracking server {uri} stopped answering during training")
    assert "continue with the same command and --resume auto" in last
    assert "Traceback" not in err


def test_training_goes_on_through_a_restart_of_the_tracking_server(trainer_argv, tmp_path):
    argv = trainer_argv("--epochs", "20", "--threads", "1")
    proc, uri, restart = server_stopped_during(argv, tmp_path, "epoch 1/20")
    # stopped: the trainer waits at its next epoch's metrics (up to 155 s by default)
    with restart():
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-2000:]
        run = MlflowClient(uri).get_run(out.strip().splitlines()[-1])
        history = MlflowClient(uri).get_metric_history(run.info.run_id, "val_loss")
    assert "warning: the tracking server does not answer" in err and "up to 155 s" in err
    assert run.info.status == "FINISHED" and sorted(m.step for m in history) == list(range(1, 21))


def test_a_deleted_experiment_is_refused_naming_how_to_restore_it(trainer_argv, mlflow_server):
    client = MlflowClient(mlflow_server)
    client.delete_experiment(client.create_experiment("deleted-before-training"))
    with pytest.raises(InvalidInput, match=r"was deleted .*\(`mlflow experiments restore") as no:
        train(trainer_argv(experiment="deleted-before-training"))
    assert "another --experiment name" in str(no.value)


def test_a_run_deleted_while_it_trains_exits_2_with_one_line_keeping_the_checkpoint(
    trainer_argv, mlflow_server, tmp_path
):
    argv = trainer_argv("--epochs", "200", experiment="deleted-while-training")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", *argv], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:
        if line.startswith("epoch 1/200"):
            break
    client = MlflowClient(mlflow_server)
    [run] = client.search_runs(
        [client.get_experiment_by_name("deleted-while-training").experiment_id]
    )
    client.delete_run(run.info.run_id)  # in MLflow's UI, say
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: the tracking server {mlflow_server} refused a request")
    assert f"checkpoint is kept in {tmp_path / 'checkpoints'}" in last
    assert f"`mlflow runs restore --run-id {run.info.run_id}`" in last
    assert "Traceback" not in err and "shows RUNNING until resumed" not in err


def test_a_server_whose_artifact_store_fails_exits_2_saying_so_not_an_outage(
    trainer_argv, tmp_path
):
    (tmp_path / "artifacts").write_text("a file where the server keeps its artifacts' folder")
    port = free_port()
    server, server_env = mlflow_command(tmp_path, port)
    uri = f"http://127.0.0.1:{port}"
    argv = trainer_argv()
    argv[argv.index("--tracking-uri") + 1] = uri
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
           "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}  # fmt: skip
    with serving(server, uri + "/health", tmp_path / "server.log", cwd=tmp_path, env=server_env):
        result = subprocess.run([sys.executable, "-m", "trainer", *argv], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: the tracking server {uri} answers but failed every try to store this run's "
        "artifacts (mlflow-artifacts:/"
    )
    assert "is likely full or not writable" in last and "Traceback" not in result.stderr


def test_a_local_artifact_location_that_cannot_be_written_is_said_naming_it(trainer_argv, tmp_path):
    (tmp_path / "blocker").write_text("a file where the experiment's artifact folder should be")
    uri = f"sqlite:///{tmp_path / 'tracking.db'}"
    MlflowClient(uri).create_experiment("blocked", f"file://{tmp_path / 'blocker' / 'art'}")
    argv = trainer_argv(experiment="blocked")
    argv[argv.index("--tracking-uri") + 1] = uri
    with pytest.raises(ServiceUnavailable, match=r"this run's artifacts cannot be written") as e:
        train(argv)
    assert f"(Not a directory: {tmp_path / 'blocker'}" in str(e.value)
    assert "make it writable, or train under another --experiment" in str(e.value)
