"""What one attempt of a job came to, as the runner records it (``jobs.runner``): which
errors mean a dependency was down (retried) and which fail the job, and whether the process
that held a job has ended."""

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import requests

from common import PipelineError, ServiceUnavailable, printable, redact_uri
from jobs.store import STORE_ERRORS
from jobs.worker import JobStopped, WorkerDied

log = logging.getLogger("jobs.runner")

TRANSIENT_ERRORS = (
    ConnectionError,
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
    *STORE_ERRORS,
)
"""Errors of a handler that mean "a dependency was down": the job is retried, not failed."""


class Attempt:
    """One claim of a job by this runner: its lease, and why it must stop (None: go on)."""

    def __init__(self, job_id: str, lease: str) -> None:
        self.job_id = job_id
        self.lease = lease
        self.stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason


def process_gone(worker: str) -> bool:
    """Whether ``worker`` (``<host>:<pid>:...``, see ``JobRunner``) is a process of this machine
    that has ended. Unknown (another machine, or a pid in use again): False, and its jobs wait
    for the heartbeat timeout; fencing keeps a wrong answer harmless (a live attempt that lost its
    job cannot publish)."""
    host, _, rest = worker.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists
        return False
    return False


def outcome_of(call: Callable[[], Any], attempt: Attempt, kind: str) -> tuple[str, Any]:
    """What ``call()`` (the handler's attempt of a ``kind`` job) came to: ``("succeed", result)``,
    ``("fail" | "retry", message)`` or ``("stopped", reason)``."""
    try:
        value = call()
        if not isinstance(value, dict):
            raise TypeError(f"the handler returned {type(value).__name__}, not a dict")
        return "succeed", value
    except JobStopped as exc:
        return "stopped", str(exc)
    except ServiceUnavailable as exc:  # waited out, unless an operator must act first
        return ("retry" if exc.retry_after is not None else "fail"), str(exc)
    except PipelineError as exc:
        return "fail", str(exc)
    except WorkerDied as exc:
        if attempt.stop_reason is not None:  # killed because cancelled or taken over
            return "stopped", attempt.stop_reason
        return "fail", str(exc)
    except TRANSIENT_ERRORS as exc:  # (a PipelineError's text is redacted when it is made)
        return "retry", redact_uri(printable(f"{type(exc).__name__}: {exc}"))
    except Exception as exc:
        log.exception("%s job %s failed with an unexpected error", kind, attempt.job_id)
        return "fail", redact_uri(printable(f"internal error: {type(exc).__name__}: {exc}"))
