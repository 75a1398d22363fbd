import os
import socket
import sys
import time

import pytest

from launcher import MLFLOW, Service
from launcher.stack import JobFailed, LaunchError, Stack, StackConfig
from tests.conftest import free_port

SLEEPER = Service("sleeper", ("python", "-c", "import time; time.sleep(600)"), port=None)
CRASHER = Service(
    "crasher",
    ("python", "-c", "import sys; print('boom: missing setting'); sys.exit(3)"),
    port=1,
    health_path="/health",
)
JOB = Service("job", ("python", "-c", "print('working'); print('abc123')"), one_shot=True)
FAILING_JOB = Service("job", ("python", "-c", "import sys; print('bad data'); sys.exit(2)"))


@pytest.fixture
def config(tmp_path) -> StackConfig:
    return StackConfig(
        root=tmp_path,
        data_dir=tmp_path / "data",
        state_dir=tmp_path / ".state",
        log_dir=tmp_path / "logs",
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_port_in_use_names_the_service_and_port(config):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        config.ports = {"mlflow": port}
        with Stack(config) as stack, pytest.raises(LaunchError, match=rf"mlflow: port {port}"):
            stack.start(MLFLOW)


def test_service_that_dies_at_start_names_its_log(config):
    config.ports = {"crasher": free_port()}
    with Stack(config) as stack:
        stack.start(CRASHER)
        with pytest.raises(LaunchError, match=r"crasher exited with code 3.*crasher\.log"):
            stack.wait_healthy(CRASHER, timeout=30)
    assert "boom: missing setting" in (config.log_dir / "crasher.log").read_text()


def test_stop_all_leaves_no_process(config):
    with Stack(config) as stack:
        stack.start(SLEEPER)
        pid = stack.procs["sleeper"].pid
        assert alive(pid)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_one_shot_job_returns_its_last_line(config):
    with Stack(config) as stack:
        assert stack.run_once(JOB) == "abc123"


def test_failed_job_names_exit_code_and_log(config):
    with Stack(config) as stack, pytest.raises(LaunchError, match=r"exit code 2.*job\.log"):
        stack.run_once(FAILING_JOB)


def test_a_failed_job_shows_its_own_lines_not_an_earlier_runs(config):
    with Stack(config) as stack:
        stack.run_once(JOB)  # the same log file: "working", "abc123"
        with pytest.raises(JobFailed) as failed:
            stack.run_once(FAILING_JOB)
    assert failed.value.code == 2
    assert failed.value.lines[-1] == "bad data"
    assert "abc123" not in str(failed.value) and "abc123" not in failed.value.lines


def test_services_get_settings_for_this_stack(config):
    config.ports = {"mlflow": 5999, "evaluator": 6001}
    env = Stack(config).environment()
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5999"
    assert env["EVALUATOR_URL"] == "http://127.0.0.1:6001"
    assert env["DATA_DIR"] == str(config.data_dir)
    # With the MLflow state its runs belong to: --resume auto must not find another state's run.
    assert env["CHECKPOINT_DIR"] == str(config.state_dir / "checkpoints")


def test_commands_run_from_this_environment(config):
    argv = Stack(config).command(JOB)
    assert argv[0] == sys.executable


EPOCHS = Service(
    "epochs",
    ("python", "-u", "-c",
     "import time\nfor e in (1, 2):\n    print('epoch %d/2  train loss 0.5' % e, flush=True); "
     "time.sleep(1.5)\nprint('run-id')"),
    one_shot=True,
)  # fmt: skip


def test_one_shot_job_lines_arrive_while_it_runs(config):
    seen: list[tuple[float, str]] = []
    with Stack(config) as stack:
        start = time.monotonic()
        last = stack.run_once(EPOCHS, on_line=lambda line: seen.append((time.monotonic(), line)))
        end = time.monotonic()
    assert last == "run-id"
    first = next(t for t, line in seen if line.startswith("epoch 1/2"))
    assert first - start < end - start - 1.0  # printed before the job ended


def test_demo_prints_the_trainers_epoch_lines_only():
    from launcher.demo import epoch_printer

    said: list[str] = []
    on_line = epoch_printer(lambda name, message: said.append(f"{name}: {message}"))
    for line in ("loading data", "epoch 1/12: 40%|##\repoch 1/12  train loss 0.9 acc 0.5  "
                 "val loss 0.8 acc 0.6 auc 0.7  3.1s", "run-id"):  # fmt: skip
        on_line(line)
    assert said == [
        "trainer: epoch 1/12  train loss 0.9 acc 0.5  val loss 0.8 acc 0.6 auc 0.7  3.1s"
    ]


def test_the_log_header_shows_the_extra_arguments_the_job_ran_with(config):
    with Stack(config) as stack:
        stack.run_once(JOB, ["--epochs", "2", "--reason", "best AUC"])
    header = (config.log_dir / "job.log").read_text().splitlines()[1]
    assert header.startswith("=== ") and header.endswith("--epochs 2 --reason 'best AUC'")


def test_a_log_past_its_size_becomes_the_older_one_at_the_next_start(config, monkeypatch):
    """Appended to at every start, logs/<service>.log would grow over months of restarts."""
    import launcher.stack

    monkeypatch.setattr(launcher.stack, "LOG_ROTATE_BYTES", 100)
    config.log_dir.mkdir(parents=True)
    log = config.log_dir / "job.log"
    log.write_text("x" * 101)
    with Stack(config) as stack:
        stack.run_once(JOB)
    assert (config.log_dir / "job.log.1").read_text() == "x" * 101
    assert "abc123" in log.read_text() and "x" * 101 not in log.read_text()
    with Stack(config) as stack:  # under the size: appended to
        stack.run_once(JOB)
    assert log.read_text().count("abc123") == 2
