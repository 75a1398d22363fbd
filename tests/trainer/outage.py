"""Trainers that lose their tracking server: an MLflow server of their own, stopped while they
train and served again on the same store and port (``test_final_logging``; ``test_main``'s
restart tests can use ``server_stopped_during``)."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from tests.conftest import ROOT, free_port, mlflow_command, serving


class OwnServer:
    """An MLflow server of a test's own on ``folder`` (its store) and a free port: each
    ``serving()`` block runs it, so a server stopped (the block left) can be served again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        port = free_port()
        self.argv, self.env = mlflow_command(folder, port)
        self.uri = f"http://127.0.0.1:{port}"
        self.starts = 0

    def serving(self) -> AbstractContextManager:
        self.starts += 1
        return serving(self.argv, self.uri + "/health", self.folder / f"server-{self.starts}.log",
                       cwd=self.folder, env=self.env)  # fmt: skip

    def trainer(self, argv: list[str], **env: str) -> subprocess.Popen:
        """``python -m trainer`` of ``argv`` (its ``--tracking-uri`` set to this server), its
        stdout and stderr piped; ``env`` added to its environment. MLflow's client gives up on
        a request at once: its own retries would hide the outage."""
        argv[argv.index("--tracking-uri") + 1] = self.uri
        env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "5", **env}  # fmt: skip
        return subprocess.Popen(
            [sys.executable, "-m", "trainer", *argv], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


def read_until(proc: subprocess.Popen, start: str, hold: bool = False) -> list[str]:
    """The lines of ``proc``'s stderr up to the first starting with ``start`` (the rest stays
    to be read); ``hold``: the process is stopped (SIGSTOP) there, until a SIGCONT."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(start):
            if hold:
                proc.send_signal(signal.SIGSTOP)
            return seen
    raise AssertionError(
        f"the trainer ended (exit {proc.wait()}) before {start!r}: {''.join(seen)[-3000:]}"
    )


def server_stopped_during(
    argv: list[str], tmp_path: Path, until: str, hold: bool = False, **env: str
) -> tuple[subprocess.Popen, str, Callable[[], AbstractContextManager]]:
    """A trainer of ``argv`` on an MLflow server of its own, stopped once the trainer printed a
    line starting with ``until`` (``hold``: the trainer stopped there until the server is down,
    so its next request meets the outage): ``(process, server's URI, restart)``, ``restart()``
    serving the same store and port again (a context manager)."""
    server = OwnServer(tmp_path)
    with server.serving():
        proc = server.trainer(argv, **env)
        read_until(proc, until, hold)
    if hold:
        proc.send_signal(signal.SIGCONT)
    return proc, server.uri, server.serving
