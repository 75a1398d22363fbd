"""Waiting for jobs without holding a thread: many requests wait, one task watches the store.

``JobWatcher.wait`` is awaited by a request handler (``?wait=`` on a submission or on
``GET /jobs/{job_id}``). All waiters of an app share one task that reads their jobs in a single
store query (off the event loop) every ``interval`` seconds, or at once when the local runner
says that one of its jobs changed. 45 long-polls therefore cost 45 futures, not 45 threads, and
``/health`` stays fast whatever they wait for.
"""

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from jobs.jobstore import JobStore
from jobs.store import FINAL_STATUSES

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
"""Seconds ``JobWatcher.stop`` waits for the watching task to end."""


async def client_gone(request: Request) -> None:
    """Returns once the client of ``request`` has closed its connection: a long poll (``?wait=``)
    then stops waiting, rather than keeping its watch for up to 600 s for nobody. Called after
    the route has its body. A body the route left unread (one sent with a GET, which
    ``service.intake`` passes on unread) is not pulled in: its first piece ends the listening (the
    wait then runs its course), so a client cannot stream bytes into a waiting GET."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
        if message.get("body") or message.get("more_body"):
            await asyncio.Event().wait()  # never set: listen no further


def _state(job: dict) -> tuple:
    return (
        job["status"],
        (job.get("progress") or {}).get("fraction"),
        (job.get("progress") or {}).get("stage"),
    )


@dataclass
class _Waiter:
    since: tuple
    until_final: bool
    future: asyncio.Future = field(repr=False)

    def satisfied_by(self, job: dict) -> bool:
        if job["status"] in FINAL_STATUSES:
            return True
        return not self.until_final and _state(job) != self.since


class JobWatcher:
    """Resolves waiters when their job finishes (or, if asked, changes status or progress).

    Args:
        store: Read with ``get_many`` once per round for every waited-for job.
        interval: Seconds between rounds while someone waits (jobs of other replicas).
    """

    def __init__(self, store: JobStore, interval: float = 0.5) -> None:
        self.store = store
        self.interval = interval
        self._waiters: dict[str, list[_Waiter]] = {}
        self._latest: dict[str, dict] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the watching task on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._watch(), name="job-watcher")

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """End the watching task (waiting at most ``timeout`` seconds for it) and cancel the
        waits still pending; never raises, so that the service's shutdown goes on."""
        self._stopping = True
        task = self._task
        if task is not None:
            task.cancel()
            # asyncio.wait neither raises the task's CancelledError nor cancels it again; a task
            # that outlives the timeout is left behind rather than blocking the shutdown.
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                log.error(
                    "the job watcher did not stop within %s s; shutting down without it", timeout
                )
            elif not task.cancelled() and task.exception() is not None:
                log.warning("the job watcher had failed: %r", task.exception())
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.cancel()

    def release(self) -> None:
        """Answer every pending wait now with its job as last seen, and every later one at once:
        the service is stopping (``release_on_exit_signal``). Call on the event loop."""
        self._stopping = True
        for job_id, waiters in self._waiters.items():
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_result(self._latest[job_id])

    def release_on_exit_signal(self) -> None:
        """Release the waits as soon as SIGTERM or SIGINT arrives, before the server's own
        handler runs. uvicorn's graceful shutdown waits for every open request before the app's
        shutdown (which would end the waits): a ``?wait=600`` held a stop for up to 600 s, past
        Kubernetes' grace period, whose SIGKILL then left the job's worker unrequeued.

        Chains to the handler in place (uvicorn's, installed before the app starts); does
        nothing outside the main thread (no signals there) or where no Python handler is set.
        """
        loop = self._loop
        if loop is None or threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            if not callable(previous):
                continue

            def handler(signum, frame, previous=previous) -> None:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self.release)
                previous(signum, frame)

            signal.signal(number, handler)

    def poke(self) -> None:
        """Look at the waited-for jobs now (safe from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    @property
    def waiting(self) -> int:
        """How many waits are pending."""
        return sum(len(waiters) for waiters in self._waiters.values())

    async def wait(
        self,
        job: dict,
        timeout: float,
        until_final: bool = True,
        gone: Coroutine[Any, Any, None] | None = None,
    ) -> dict:
        """``job`` as it is once it finished (or, with ``until_final=False``, once its status or
        progress differs from ``job``'s), or as last seen after ``timeout`` seconds, when the
        service stops, or when ``gone`` returns (the client hung up: ``client_gone``)."""
        if job["status"] in FINAL_STATUSES or timeout <= 0 or self._loop is None or self._stopping:
            if gone is not None:
                gone.close()
            return job
        job_id = job["job_id"]
        waiter = _Waiter(_state(job), until_final, self._loop.create_future())
        self._waiters.setdefault(job_id, []).append(waiter)
        self._latest.setdefault(job_id, job)
        self.poke()
        watching = {asyncio.ensure_future(asyncio.shield(waiter.future))}
        if gone is not None:
            watching.add(asyncio.ensure_future(gone))
        try:
            await asyncio.wait(watching, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if waiter.future.done() and not waiter.future.cancelled():
                return waiter.future.result()
            return self._latest.get(job_id, job)
        finally:
            for task in watching:
                task.cancel()
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: a failed receive() is no error of the wait
            waiters = self._waiters.get(job_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(job_id, None)
                self._latest.pop(job_id, None)

    async def _watch(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            # Not asyncio.wait_for: in Python 3.11 it returns the finished wait and swallows a
            # cancellation that arrives while a poke is being delivered, so the task never ended
            # and the service hung in shutdown. asyncio.timeout lets a cancellation through.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            if not self._waiters:
                continue
            try:
                found = await asyncio.to_thread(self.store.get_many, list(self._waiters))
            except Exception as exc:  # the store is down: waiters time out with what they saw
                log.warning("could not read waited-for jobs: %s: %s", type(exc).__name__, exc)
                continue
            for job_id, job in found.items():
                self._latest[job_id] = job
                for waiter in self._waiters.get(job_id, []):
                    if not waiter.future.done() and waiter.satisfied_by(job):
                        waiter.future.set_result(job)
