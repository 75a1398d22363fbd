"""Server processes for tests: started for a block, stopped as a whole, and ended with the test
process however it ends (``kill -9`` of pytest or of an xdist worker too: ``common.tether``)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import spawn_tethered
from launcher import MLFLOW
from launcher.stack import wait_http

__all__ = ["command_pid", "mlflow_command", "serving", "stop_group", "wait_http"]


@contextmanager
def serving(argv: list[str], health_url: str, log_path: Path, **popen) -> Iterator[None]:
    """Run a server process for the block; fail with the end of its log if it never answers.

    The server runs in a process group of its own, and the whole group is stopped afterwards:
    MLflow's server starts helper processes (uvicorn workers) that would otherwise outlive it.
    It is tethered to this process (``common.spawn_tethered``): should this process be killed,
    the group ends too.
    """
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = spawn_tethered(argv, stdout=log, stderr=subprocess.STDOUT, **popen)
    try:
        try:
            wait_http(health_url, timeout=120, proc=proc)
        except RuntimeError as exc:  # LaunchError: it exited or never answered
            raise RuntimeError(f"{exc}\n{Path(log_path).read_text()[-3000:]}") from None
        yield
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group that ``proc`` leads, SIGKILL what is left after ``grace``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def command_pid(proc: subprocess.Popen) -> int:
    """The pid of the command that a tether (``common.spawn_tethered``) runs: its one child."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 1, f"the tether {proc.pid} has children {children}"
    return int(children[0])


def mlflow_command(state: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """The MLflow server as `make demo` runs it (``launcher.MLFLOW``: SQLite store and served
    artifacts in ``state``), on ``port`` with one worker, and the environment it runs in."""
    argv = MLFLOW.render(host="127.0.0.1", port=port, state=state)
    assert argv[0] == "mlflow"
    return [sys.executable, "-m", *argv, "--workers", "1"], {**os.environ, **dict(MLFLOW.env)}
