"""Where a job's handler runs: a context it reports through, and a worker process that dies with
its service.

A handler is ``handler(job)`` or ``handler(job, ctx)``; ``ctx`` is a ``JobContext``:

- ``ctx.progress(fraction, stage)`` reports progress (0-1 and words such as ``"predicting 3/8"``);
  it raises ``JobStopped`` once the attempt was cancelled or taken over, so a handler that
  reports progress stops at its next report.
- ``ctx.fence()`` is called right before the handler publishes its result (the one step that
  others see); it raises ``JobStopped`` when this attempt no longer holds the job's lease.

``WorkerProcess`` is one spawned child that runs handlers one at a time. It runs below the
service's priority (``os.nice``), caps torch's threads so that a core stays free for serving, gives
tqdm a thread lock (no semaphore for a killed worker to leak), and exits when its parent dies: a
parent-death signal (Linux ``prctl``: ``common.set_parent_death_signal``) and a thread that watches
the parent's pid, so a ``kill -9`` of the service leaves no worker computing a job twice.
"""

import contextlib
import inspect
import logging
import multiprocessing
import os
import pickle
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from common import (
    StartupError,
    available_cores,
    configure_logging,
    get_settings,
    set_parent_death_signal,
)

log = logging.getLogger(__name__)

WORKER_NICE = 10
PROGRESS_EVERY_S = 0.5
_COUNTS = re.compile(r"\d[\d/.,]*")  # the counts in a stage ("predicting 3/40")


class JobStopped(Exception):
    """This attempt must stop: the job was cancelled, or its lease was taken over."""


class WorkerDied(Exception):
    """The worker process exited while running a job."""


class JobContext:
    """What a running handler may tell the runner; see the module docstring.

    Args:
        report: ``report(fraction, stage)`` stores progress; returns False when the attempt must
            stop.
        fence: Returns None while the attempt holds the lease, else why it does not.
    """

    def __init__(
        self,
        report: Callable[[float, str], bool],
        fence: Callable[[], str | None],
    ) -> None:
        self._report = report
        self._fence = fence
        self._last = (0.0, "")

    def progress(self, fraction: float, stage: str) -> None:
        """Report progress (sent at most every 0.5 s within one stage: ``predicting 3/40`` and
        ``predicting 4/40`` are one; another stage is sent at once, since a failure names the
        last one sent)."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        now = time.monotonic()
        last_time, last_stage = self._last
        # By its words without counts: by its first word, "loading the test split" was held
        # back after "loading the model", and a bad test split failed "while loading the model"
        same_stage = _COUNTS.sub("#", stage) == _COUNTS.sub("#", last_stage)
        if same_stage and now - last_time < PROGRESS_EVERY_S and fraction < 1.0:
            return
        self._last = (now, stage)
        if not self._report(fraction, stage):
            raise JobStopped("the job was cancelled or taken over by another worker")

    def fence(self) -> None:
        """Raise ``JobStopped`` unless this attempt still holds the job (call before publishing)."""
        reason = self._fence()
        if reason is not None:
            raise JobStopped(reason)


def call_handler(handler: Callable, job: dict, ctx: JobContext) -> Any:
    """``handler(job, ctx)`` when it takes a second argument, else ``handler(job)``."""
    try:
        inspect.signature(handler).bind(job, ctx)
    except TypeError:
        return handler(job)
    except ValueError:  # no signature (a builtin): call it the simple way
        return handler(job)
    return handler(job, ctx)


def _watch_parent(parent_pid: int) -> None:
    """Exit at once when the parent is gone (the portable half of the parent-death signal)."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(70)
        time.sleep(0.5)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError that keeps its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _thread_lock_for_tqdm() -> None:
    """Give tqdm's bars (the evaluator's and explainer's handlers draw them, disabled or not) a
    thread lock. Its default, made at the first bar, is a multiprocessing lock: in a spawned
    worker a named semaphore registered with the service's resource tracker, which a worker
    ended by terminate or kill never unregisters, so every stop and cancel logged
    "resource_tracker: There appear to be 1 leaked semaphore objects". A worker runs one job at
    a time: its bars share no lock with another process."""
    try:
        from tqdm import tqdm
    except ImportError:
        return
    tqdm.set_lock(threading.RLock())


def _child_main(conn: Connection, parent_pid: int, nice: int, torch_threads: int) -> None:
    """The worker process: run each ``(handler, job)`` received, reply with the outcome."""
    set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(70)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle
    with contextlib.suppress(OSError):
        os.nice(nice)
    _thread_lock_for_tqdm()
    try:  # spawned: its handler's lines in the service's one format, not bare last-resort ones
        configure_logging(get_settings().log_level)
    except StartupError:  # the service started with these settings; a changed .env: the default
        configure_logging()

    def report(fraction: float, stage: str) -> bool:
        conn.send(("progress", fraction, stage))
        return conn.recv()

    def fence() -> str | None:
        conn.send(("fence",))
        return conn.recv()

    while True:
        try:
            handler, job = conn.recv()
        except (EOFError, OSError):
            return
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() > torch_threads:
            torch.set_num_threads(torch_threads)
        try:
            result = call_handler(handler, job, JobContext(report, fence))
            message = ("done", result)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise
            message = ("error", _portable(exc))
        try:
            conn.send(message)
        except (pickle.PicklingError, TypeError) as exc:
            conn.send(("error", RuntimeError(f"the handler's result cannot be sent: {exc}")))


def default_torch_threads() -> int:
    """One core fewer than this process may use (``common.available_cores``: a container's CPU
    quota, not the node's cores), at least one: that core serves the API."""
    return max(1, available_cores() - 1)


class WorkerProcess:
    """A spawned child process that runs handlers, one job at a time, and dies with its parent.

    Args:
        nice: Added to the child's OS priority (higher = lower priority).
        torch_threads: Cap on torch's intra-op threads in the child.
    """

    def __init__(self, nice: int = WORKER_NICE, torch_threads: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_child_main,
            args=(child, os.getpid(), nice, torch_threads or default_torch_threads()),
            name="job-worker",
            daemon=True,
        )
        self.process.start()
        child.close()

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def run(
        self,
        handler: Callable,
        job: dict,
        report: Callable[[float, str], bool],
        fence: Callable[[], str | None],
        stop_reason: Callable[[], str | None],
    ) -> Any:
        """Run ``handler`` on ``job`` in the child; the handler's result, or its exception.

        Args:
            report, fence: Answer the child's ``JobContext`` calls.
            stop_reason: Polled while waiting; a reason ends the child and raises ``JobStopped``.

        Raises:
            JobStopped: ``stop_reason`` gave a reason (the child was killed).
            WorkerDied: The child exited.
        """
        self.conn.send((handler, job))
        while True:
            reason = stop_reason()
            if reason is not None:
                self.close(grace=0)
                raise JobStopped(reason)
            try:
                if not self.conn.poll(0.1):
                    if not self.process.is_alive():
                        raise WorkerDied(self._died())
                    continue
                message = self.conn.recv()
            except (EOFError, OSError):
                self.process.join(5)
                raise WorkerDied(self._died()) from None
            kind = message[0]
            if kind == "progress":
                self.conn.send(report(message[1], message[2]))
            elif kind == "fence":
                self.conn.send(fence())
            elif kind == "done":
                return message[1]
            else:
                raise message[1]

    def _died(self) -> str:
        code = self.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        # Not retried: a job that the out-of-memory killer ended would likely end alike again
        # (a service killed with its worker is another matter: its job is requeued). A failed
        # job is never reused: the same request submits it again.
        if code == -signal.SIGKILL:
            return (
                f"the worker process was killed ({how}: out of memory?), so the job is not tried "
                "again; submit it again once more memory is free (fewer jobs at once, a smaller "
                "batch_size or n_samples)"
            )
        return f"the worker process died ({how}), so the job is not tried again; submit it again"

    def close(self, grace: float = 5.0) -> None:
        """End the child: terminate, then kill after ``grace`` seconds; reap it."""
        if self.process.is_alive():
            if grace > 0:
                self.process.terminate()
                self.process.join(grace)
            if self.process.is_alive():
                self.process.kill()
        self.process.join(5)
        self.conn.close()
