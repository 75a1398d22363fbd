"""Run queued jobs of one kind in background threads: claim, run the handler, record the outcome.

The handler is a pure function ``handler(job) -> dict`` (the evaluator's calls its core module);
the runner does everything else: claiming atomically (several runners and replicas may share one
store), heartbeats while the handler runs, requeueing or failing jobs whose worker died, and
surviving both failing jobs and store outages.
"""

import logging
import multiprocessing
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from common import PipelineError
from jobs.store import FINAL_STATUSES, JobStore

log = logging.getLogger(__name__)

Handler = Callable[[dict], dict]


class JobRunner:
    """Background workers for the jobs of one ``kind`` in a ``JobStore``.

    Args:
        store: Where jobs are claimed and recorded.
        kind: The job kind this runner serves, such as ``"evaluate"``.
        handler: ``handler(job) -> dict``; raise ``PipelineError`` for a user-facing failure.
        worker_id: Name recorded in claimed jobs; default ``<host>:<pid>:<random>``.
        poll_interval: Seconds between looks for queued jobs when idle (``wake`` skips the wait).
        concurrency: Number of jobs run at once (one thread each).
        heartbeat_interval: Seconds between heartbeats of running jobs.
        stale_after: A running job without a heartbeat for this long belongs to a dead worker.
        isolate: Run the handler in worker processes (spawned once, reused), so that a CPU-bound
            handler does not hold the serving process's GIL; the handler must pickle (a
            module-level function or a ``functools.partial`` of one).
    """

    def __init__(
        self,
        store: JobStore,
        kind: str,
        handler: Handler,
        worker_id: str | None = None,
        poll_interval: float = 0.2,
        concurrency: int = 1,
        heartbeat_interval: float = 5,
        stale_after: float = 30,
        isolate: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.store = store
        self.kind = kind
        self.handler = handler
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.isolate = isolate
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._finished = threading.Condition()
        self._active: dict[str, str] = {}  # job_id -> worker id of the thread running it
        self._active_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        """True while the worker threads are alive."""
        return any(t.is_alive() for t in self._threads)

    def start(self) -> "JobRunner":
        """Start the worker threads and the heartbeat thread (stale jobs are recovered first)."""
        if self.running:
            return self
        self._stop.clear()
        self._recover()
        names = [f"{self.kind}-worker-{i}" for i in range(self.concurrency)]
        targets = [self._work] * self.concurrency + [self._beat]
        for name, target in zip([*names, f"{self.kind}-heartbeat"], targets, strict=True):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop after the running jobs finish (at most ``timeout`` seconds per thread)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def wake(self) -> None:
        """Look for queued jobs now instead of after the poll interval."""
        self._wake.set()

    def wait(self, job_id: str, timeout: float) -> dict:
        """The job once it has finished, or as it is after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            remaining = deadline - time.monotonic()
            if job["status"] in FINAL_STATUSES or remaining <= 0:
                return job
            with self._finished:  # woken by this runner; polls for jobs run by other replicas
                self._finished.wait(min(remaining, 0.25))

    def _recover(self) -> None:
        try:
            self.store.recover_stale(self.kind, self.stale_after)
        except Exception as exc:  # the store may be down; the heartbeat thread retries
            log.warning("could not recover stale %s jobs: %s", self.kind, exc)

    def _work(self) -> None:
        thread_worker = f"{self.worker_id}/{threading.current_thread().name.rsplit('-', 1)[-1]}"
        outage = 0
        while not self._stop.is_set():
            try:
                job = self.store.claim_next(self.kind, thread_worker)
                outage = 0
            except Exception as exc:
                outage += 1
                self._log_outage("claim a job", exc, outage)
                self._stop.wait(min(self.poll_interval * 2**outage, 5.0))
                continue
            if job is None:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                continue
            self._run(job, thread_worker)

    def _run(self, job: dict, thread_worker: str) -> None:
        job_id = job["job_id"]
        with self._active_lock:
            self._active[job_id] = thread_worker
        try:
            try:
                outcome, value = "succeed", self._call(job)
                if not isinstance(value, dict):
                    raise TypeError(f"the handler returned {type(value).__name__}, not a dict")
            except PipelineError as exc:
                outcome, value = "fail", str(exc)
            except Exception as exc:
                log.exception("%s job %s failed with an unexpected error", self.kind, job_id)
                outcome, value = "fail", f"internal error: {type(exc).__name__}: {exc}"
            self._record(job_id, outcome, value, thread_worker)
        finally:
            with self._active_lock:
                self._active.pop(job_id, None)
            with self._finished:
                self._finished.notify_all()

    def _call(self, job: dict):
        if not self.isolate:
            return self.handler(job)
        with self._pool_lock:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.concurrency, mp_context=context)
            pool = self._pool
        try:
            return pool.submit(self.handler, job).result()
        except BrokenProcessPool:  # a worker process died (out of memory?): start afresh
            with self._pool_lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def _record(self, job_id: str, outcome: str, value, worker: str) -> None:
        """Store the outcome, retrying through a store outage (a stale job is recovered later)."""
        for attempt in range(1, 8):
            try:
                getattr(self.store, outcome)(job_id, value, worker)
                return
            except PipelineError as exc:  # e.g. the job was recovered by another replica
                log.warning("could not %s job %s: %s", outcome, job_id, exc)
                return
            except Exception as exc:
                self._log_outage(f"{outcome} job {job_id}", exc, attempt)
                time.sleep(min(0.2 * 2**attempt, 5.0))
        log.error("gave up recording job %s; it will be recovered as stale", job_id)

    def _beat(self) -> None:
        last_recovery = time.monotonic()
        while not self._stop.wait(self.heartbeat_interval):
            with self._active_lock:
                active = dict(self._active)
            for job_id, worker in active.items():
                try:
                    if not self.store.heartbeat(job_id, worker):
                        log.warning("job %s is no longer running for %s", job_id, worker)
                except Exception as exc:
                    self._log_outage(f"heartbeat job {job_id}", exc, 1)
            if time.monotonic() - last_recovery >= self.stale_after:
                self._recover()
                last_recovery = time.monotonic()

    def _log_outage(self, action: str, exc: Exception, count: int) -> None:
        level = logging.WARNING if count <= 1 else logging.DEBUG
        log.log(
            level,
            "%s runner could not %s (%s: %s); retrying",
            self.kind,
            action,
            type(exc).__name__,
            exc,
        )
