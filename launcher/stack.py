"""Local processes for the pipeline's services: start, health-check, log to files, stop all."""

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from common import spawn_tethered
from launcher.services import MLFLOW, Service

REPO_ROOT = Path(__file__).resolve().parents[1]
# A service's log (logs/<service>.log) is appended to; past this size at a start it becomes
# <service>.log.1 (replacing the one before), so restarts over months do not fill the disk.
LOG_ROTATE_BYTES = 50 * 2**20


class LaunchError(RuntimeError):
    """A service could not be started or a stage failed; the message names it and its log."""


class JobFailed(LaunchError):
    """A one-shot job exited with ``code``; ``lines``: what it printed (this run of it only)."""

    def __init__(self, message: str, code: int, lines: list[str]) -> None:
        super().__init__(message)
        self.code, self.lines = code, lines


@dataclass
class StackConfig:
    """Where the local stack keeps its state and which ports it uses.

    Attributes:
        root: Working directory of every process (the repository root).
        data_dir: The image folder (``data/``).
        state_dir: MLflow database and artifacts, embedded store, checkpoints.
        log_dir: One log file per service.
        ports: Port of each service by name; the service's default when absent.
        env: Extra environment variables for every process.
    """

    root: Path
    data_dir: Path
    state_dir: Path
    log_dir: Path
    host: str = "127.0.0.1"
    experiment: str = "demo"
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def port(self, service: Service) -> int | None:
        return self.ports.get(service.name, service.port)

    def url(self, service: Service) -> str:
        return f"http://{self.host}:{self.port(service)}"


def _resolve(argv: list[str]) -> list[str]:
    """Run console scripts and ``python`` from this interpreter's environment."""
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    script = Path(sys.executable).parent / argv[0]
    return [str(script), *argv[1:]] if script.exists() else argv


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers 200; ``LaunchError`` if ``proc`` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LaunchError(f"exited with code {proc.returncode} while starting")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise LaunchError(f"did not answer {url} within {timeout:.0f}s")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class Stack:
    """Starts services as local processes; ``with Stack(cfg) as s:`` stops them all on exit.

    Each process runs tethered to this one (``common.spawn_tethered``): should this process be
    killed (``kill -9``, out of memory), every service and job it started ends with it, with the
    processes they started. ``procs`` holds the tethers, which read as their commands (exit
    status) and lead the process groups ``stop_all`` stops.
    """

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def environment(self) -> dict[str, str]:
        """The environment every process gets: the settings pointing at this stack."""
        from launcher.services import EVALUATOR, EXPLAINER, PREDICTOR

        cfg = self.config
        env = dict(os.environ)
        path = [str(REPO_ROOT), env.get("PYTHONPATH", "")]
        env.update(
            PYTHONPATH=os.pathsep.join(p for p in path if p),
            MLFLOW_TRACKING_URI=cfg.url(MLFLOW),
            EVALUATOR_URL=cfg.url(EVALUATOR),
            EXPLAINER_URL=cfg.url(EXPLAINER),
            PREDICTOR_URL=cfg.url(PREDICTOR),
            RUN_ID_FILE=str(cfg.root / "run_id.txt"),
            DATA_DIR=str(cfg.data_dir),
            ARTIFACTS_DIR=str(cfg.root / "artifacts"),
            STORE_DIR=str(cfg.state_dir / "store"),
            CHECKPOINT_DIR=str(cfg.state_dir / "checkpoints"),
            PYTHONUNBUFFERED="1",
        )
        env.update(cfg.env)
        return env

    def log_path(self, service: Service) -> Path:
        return self.config.log_dir / f"{service.name}.log"

    def command(self, service: Service, extra: list[str] | None = None) -> list[str]:
        cfg = self.config
        argv = service.render(
            host=cfg.host,
            port=cfg.port(service) or 0,
            state=cfg.state_dir / "mlflow",
            data=cfg.data_dir,
            experiment=cfg.experiment,
        )
        return _resolve(argv) + list(extra or [])

    def _spawn(self, service: Service, extra: list[str] | None = None) -> subprocess.Popen:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        (self.config.state_dir / "mlflow").mkdir(parents=True, exist_ok=True)
        path = self.log_path(service)
        if path.exists() and path.stat().st_size > LOG_ROTATE_BYTES:  # one older file kept
            os.replace(path, path.with_name(path.name + ".1"))
        log = open(path, "a", buffering=1)  # noqa: SIM115 - closed in stop_all
        self._logs.append(log)
        argv = self.command(service, extra)
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n")
        # In a process group of its own (stopped as a whole), through a tether that ends the
        # group when this process dies, however it dies: no service outlives a `kill -9`
        return spawn_tethered(
            argv,
            cwd=self.config.root,
            env={**self.environment(), **dict(service.env)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def start(self, service: Service) -> None:
        """Start a long-running service without waiting for it (see ``wait_healthy``)."""
        port = self.config.port(service)
        if port and port_in_use(self.config.host, port):
            raise LaunchError(
                f"{service.name}: port {port} is already in use. Stop whatever listens there "
                f"(e.g. an earlier `make demo`: `lsof -i :{port}`) and try again, or give the "
                f"service another port (`python -m launcher demo --port {service.name}=PORT`)."
            )
        self.procs[service.name] = self._spawn(service)

    def wait_healthy(self, service: Service, timeout: float = 120.0) -> None:
        """Wait until the service's health endpoint answers 200."""
        url = self.config.url(service) + (service.health_path or "/")
        try:
            wait_http(url, timeout, self.procs[service.name])
        except LaunchError as exc:
            raise LaunchError(f"{service.name} {exc}; see {self.log_path(service)}") from None

    def run_once(
        self,
        service: Service,
        extra: list[str] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> str:
        """Run a one-shot job to completion and return the last line it printed.

        ``on_line`` receives each line the job writes, while it runs (the trainer's epochs).
        """
        log_path = self.log_path(service)
        offset = start = log_path.stat().st_size if log_path.exists() else 0
        proc = self._spawn(service, extra)
        self.procs[service.name] = proc
        pending = ""
        while True:
            code = proc.poll()
            if on_line is not None:
                with open(log_path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                offset += len(chunk)
                pending += chunk.decode("utf-8", errors="replace")
                *lines, pending = pending.split("\n")
                for line in lines:
                    on_line(line.rstrip("\r"))
            if code is not None:
                break
            time.sleep(0.5 if on_line is not None else 0.2)
        del self.procs[service.name]
        with open(log_path, "rb") as f:  # this run's lines: the log holds earlier runs too
            f.seek(start)
            lines = f.read().decode("utf-8", errors="replace").strip().splitlines()
        if code != 0:
            tail = "\n    ".join(lines[-5:])
            raise JobFailed(
                f"{service.name} failed with exit code {code}; see {log_path}:\n    {tail}",
                code,
                lines,
            )
        return lines[-1].strip() if lines else ""

    def check_alive(self) -> None:
        """Raise when a started service has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = self.config.log_dir / f"{name}.log"
                raise LaunchError(f"{name} stopped with exit code {proc.returncode}; see {log}")

    def stop_all(self, timeout: float = 10.0) -> None:
        """Terminate every process group started here (SIGTERM, then SIGKILL)."""
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # children left behind in the group
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
