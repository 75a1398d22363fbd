"""The end of a training under an MLflow outage (``trainer.finish``): the final logging (the
model, its figures, the run FINISHED) waits out a restart of the tracking server as the epochs
do, and an outage longer than the wait ends with one line naming the command that finishes it,
which logs what the first try chose (checkpointed) and recorded, never other figures."""

import argparse
import shlex
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from common import Conflict
from runs import DIGEST_KEY, MODEL_RECORD_KEY, load_classifier, reference_of, weights_digest
from tests.trainer.conftest import artifact_json, grey_folder
from tests.trainer.outage import OwnServer, read_until
from trainer import checkpoint, finish, mlflow_run, train
from trainer.cli import get_args_parser
from trainer.train import unmarked

WAITING = "warning: the tracking server does not answer"


def test_the_wait_tries_again_until_the_server_answers(monkeypatch):
    monkeypatch.setattr(mlflow_run, "OUTAGE_POLL_S", 0.0)
    tries, said = [], []

    def request() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("Connection refused")
        return "logged"

    assert mlflow_run.outlasting(request, said.append) == "logged"
    assert len(tries) == 3
    assert said[0].startswith(f"{WAITING} (ConnectionError); training waits up to ")
    assert said[1].startswith("the tracking server answers again after ") and len(said) == 2


def test_an_outage_past_the_wait_is_raised_and_a_refusal_at_once(monkeypatch):
    monkeypatch.setattr(mlflow_run, "OUTAGE_POLL_S", 0.0)
    tries, said = [], []

    def refused() -> None:
        if tries:
            raise AssertionError("a request the server refused was tried again")
        tries.append(1)
        raise MlflowException("another value", error_code=INVALID_PARAMETER_VALUE)

    with pytest.raises(MlflowException):
        mlflow_run.outlasting(refused, said.append)
    monkeypatch.setattr(mlflow_run, "outage_wait_s", lambda: 0.0)

    def down() -> None:
        tries.append(1)
        raise ConnectionError("Connection refused")

    with pytest.raises(ConnectionError):
        mlflow_run.outlasting(down, said.append)
    assert said == [] and len(tries) == 2


def test_the_line_of_an_outage_past_the_wait_names_the_command_of_this_device_and_threads(
    tmp_path,
):
    args = argparse.Namespace(data_dir=tmp_path / "my data", experiment="lung x-ray")
    path = tmp_path / "checkpoints" / "last.pt"
    session = argparse.Namespace(args=args, checkpoint_path=path, run_id="abc123",
                                 device=torch.device("cpu"))  # fmt: skip
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        line = finish._unlogged(session, ConnectionError("Connection refused"))
    finally:
        torch.set_num_threads(before)
    assert line.startswith(
        f"the tracking server {mlflow.get_tracking_uri()} stopped answering while the trained "
        "model was being logged (ConnectionError: Connection refused), for longer than the "
        f"trainer waits ({mlflow_run.outage_wait_s():.0f} s)"
    )
    assert f"its model is saved in the checkpoint {path}: once the server answers, `" in line
    assert line.endswith("` logs it in run abc123 without training again")
    command = shlex.split(line.split("`")[1])
    assert command[:3] == ["python", "-m", "trainer"]
    parsed = get_args_parser().parse_args(command[3:])
    assert (parsed.data_dir, parsed.experiment, parsed.checkpoint_dir, parsed.resume) == (
        str(args.data_dir), "lung x-ray", str(path.parent), "auto"
    )  # fmt: skip
    # what a resume takes from its command line, not the checkpoint: the run's
    assert (parsed.device, parsed.threads) == ("cpu", 3)


def test_a_run_the_final_logging_marked_is_not_said_to_show_running():
    assert unmarked("r1", "FINISHED", finished=True) is None
    assert unmarked("r1", "FAILED", finished=True) == (
        "could not mark run r1 FAILED: it shows FINISHED, as its final logging marked it"
    )
    assert unmarked("r1", "KILLED", finished=False).endswith("it shows RUNNING until resumed")


@dataclass
class Outage:
    """Two trainers whose server stopped just before their final logging, served again."""

    uri: str
    waited: tuple[int, str, str]  # a trainer that waits: exit status, stdout, stderr
    outlasted: tuple[int, str, list[str]]  # one that does not: exit status, stderr, argv


def _argv(data: Path, checkpoints: Path, experiment: str, *extra: str) -> list[str]:
    return [
        "--data-dir", str(data), "--experiment", experiment, "--tracking-uri", "(set)",
        "--checkpoint-dir", str(checkpoints), "--ensemble", "1", "--batch-size", "16",
        "--threads", "1", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def outage(tmp_path_factory, tiny_data) -> Iterator[Outage]:
    """One server for both trainers, stopped once each has printed its last epoch's line
    (each held there, SIGSTOP, until the server is down) and served again after; both train
    at once. One waits for the server (and finishes once it answers again), the other
    (``JOB_RETRY_DELAY_S`` 0) does not: it ends with the command that finishes its logging.
    The second trains two-class data (a decision threshold) and stops early (epoch 2's
    validation loss no better than epoch 1's): resumed, it must not train on."""
    folder = tmp_path_factory.mktemp("outage")
    server = OwnServer(folder)
    waits = _argv(tiny_data, folder / "waits", "waits", "--epochs", "1")
    outlasts = _argv(
        grey_folder(folder / "grey", (16, 16)), folder / "outlasts", "outlasts", "--epochs", "4",
        "--patience", "1", "--select", "loss", "--lr", "1", "--positive-class", "b",
    )  # fmt: skip
    procs: list[subprocess.Popen] = []
    try:
        with server.serving():
            procs = [server.trainer(waits), server.trainer(outlasts, JOB_RETRY_DELAY_S="0")]
            pool = ThreadPoolExecutor(2)  # (a reader left blocked ends when its trainer is killed)
            try:
                held = [pool.submit(read_until, procs[0], "epoch 1/1", True),
                        pool.submit(read_until, procs[1], "early stop", True)]  # fmt: skip
                for future in held:
                    future.result(timeout=300)
            finally:
                pool.shutdown(wait=False)
        for proc in procs:  # the server is down now
            proc.send_signal(signal.SIGCONT)
        err = procs[1].stderr.read()
        outlasted = (procs[1].wait(timeout=300), err, outlasts)
        read_until(procs[0], WAITING)  # it met the outage in its final logging, and waits
        with server.serving():
            out, err = procs[0].communicate(timeout=300)
            yield Outage(server.uri, (procs[0].returncode, out, err), outlasted)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.send_signal(signal.SIGCONT)
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()


def _one_loadable_model(uri: str, run_id: str):
    """Run ``run_id`` is FINISHED with one LoggedModel, the one it records, which
    ``runs:/<id>/model`` resolves to and which loads with the run's weights: the model."""
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
    return loaded


@pytest.mark.slow
def test_the_final_logging_waits_out_a_restart_of_the_tracking_server(outage):
    status, out, err = outage.waited
    assert status == 0, err[-2000:]
    _one_loadable_model(outage.uri, out.strip().splitlines()[-1])
    assert "the tracking server answers again after" in err
    assert "kept model: validation AUC" in err and "Traceback" not in err


@pytest.mark.slow
def test_an_outage_longer_than_the_wait_names_the_command_that_finishes_the_logging(outage):
    status, err, argv = outage.outlasted
    assert status == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"error: the tracking server {outage.uri} stopped answering while the trained model "
        "was being logged ("
    )
    assert "Traceback" not in err and WAITING not in err
    command = shlex.split(last.split("`")[1])
    assert command[command.index("--threads") + 1] == "1"
    assert command[command.index("--device") + 1] == "cpu"
    assert command[command.index("--data-dir") + 1] == argv[argv.index("--data-dir") + 1]


@pytest.mark.slow
def test_the_command_finishes_the_run_with_what_its_first_try_chose_and_recorded(outage, capsys):
    """The first try recorded its threshold, then the outage outlasted the wait. Resumed on
    other threads (whose validation probabilities may differ in their last digits), the
    logging records the threshold that try chose, not a new one; a run that records another
    value (set outside the training) refuses it in one line."""
    argv, uri = outage.outlasted[2], outage.uri
    command = shlex.split(outage.outlasted[1].strip().splitlines()[-1].split("`")[1])[3:]
    command[command.index("--threads") + 1] = "2"
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("outlasts").experiment_id])
    run_id = run.info.run_id
    path = Path(argv[argv.index("--checkpoint-dir") + 1]) / checkpoint.CHECKPOINT_NAME
    state = checkpoint.load(path)
    final = state["final"]  # chosen, and kept, before any of it was logged
    assert final["point"]["positive_class"] == "b" and final["ood_reference"] is not None
    # a value the run records, not the trainer's: refused in one line, the checkpoint kept
    client.log_param(run_id, "decision_threshold", "0.123")
    client.log_param(run_id, "ood_threshold", "7.5")
    threads = torch.get_num_threads()
    try:
        with pytest.raises(Conflict) as refused:
            train(command)
        assert not checkpoint.load(path)["finished"]
        # what that try had chosen, as a first try with these values would have: recorded
        final["point"]["threshold"] = 0.123
        final["ood_threshold"] = final["ood_reference"]["threshold"] = 7.5
        checkpoint.save(path, state)
        for name, value in (("best_val_auc", final["val"]["auc"]), ("best_epoch", 1)):
            client.log_metric(run_id, name, value, timestamp=final["stamp"] - 60_000)
        # what a try cut short in the middle of log_model leaves: a LoggedModel named model
        client.create_logged_model(run.info.experiment_id, name="model", source_run_id=run_id)
        capsys.readouterr()
        assert train(command) == run_id
    finally:
        torch.set_num_threads(threads)
    message = str(refused.value)
    assert message.startswith(f"run {run_id} refused the final logging of this training (")
    assert "\n" not in message and "train it in a new run" in message
    err = capsys.readouterr().err
    assert f"resuming run {run_id} after epoch 2/4" in err and "continues on 2" in err
    assert not [line for line in err.splitlines() if line.startswith("epoch ")]  # no training
    loaded = _one_loadable_model(uri, run_id)
    assert loaded.operating_point["threshold"] == 0.123
    assert reference_of(loaded.model).threshold == 7.5
    assert artifact_json(uri, run_id, "operating_point.json")["threshold"] == 0.123
    params = client.get_run(run_id).data.params
    assert (params["decision_threshold"], params["ood_threshold"]) == ("0.123", "7.5")
    for name in ("best_val_auc", "best_epoch"):  # logged once: not again at another time
        assert len(client.get_metric_history(run_id, name)) == 1
