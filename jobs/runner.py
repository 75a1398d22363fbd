"""Run queued jobs of one kind in background threads: claim, run the handler, record the outcome.

The handler is a pure function ``handler(job[, ctx]) -> dict`` (the evaluator's calls its core
module); the runner does everything else: claiming atomically (several runners and replicas may
share one store), one fenced attempt per claim (``lease``), heartbeats and progress while the
handler runs, requeueing with backoff when a dependency was down, cancelling, requeueing or
failing jobs whose worker died, and surviving both failing jobs and store outages.
"""

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from common import PipelineError
from jobs.attempts import PUBLISH_TURN_WAIT_S
from jobs.jobstore import JobStore
from jobs.outcomes import Attempt, outcome_of, process_gone
from jobs.store import FINAL_STATUSES
from jobs.worker import JobContext, JobStopped, WorkerDied, WorkerProcess, call_handler

log = logging.getLogger(__name__)

RECORD_TRIES = 7
"""Tries to store a failure or retry through a store outage (about 17 s) before giving up."""
RECORD_BACKOFF_S = (0.2, 5.0)
"""The wait before the next try to store an outcome: the first doubled at each try, at most
the second."""

Handler = Callable[..., dict]


class JobRunner:
    """Background workers for the jobs of one ``kind`` in a ``JobStore``.

    Args:
        store: Where jobs are claimed and recorded.
        kind: The job kind this runner serves, such as ``"evaluate"``.
        handler: ``handler(job)`` or ``handler(job, ctx)`` returning a dict (``ctx``: a
            ``jobs.worker.JobContext``); raise ``PipelineError`` for a user-facing failure and
            ``ServiceUnavailable`` when a dependency is down (the job is retried).
        worker_id: Name recorded in claimed jobs; default ``<host>:<pid>:<random>``.
        poll_interval: Seconds between looks for queued jobs when idle (``wake`` skips the wait).
        concurrency: Number of jobs run at once (one thread each).
        heartbeat_interval: Seconds between heartbeats of running jobs.
        stale_after: A running job without a heartbeat for this long belongs to a dead worker.
        isolate: Run the handler in a worker process per thread (spawned once, reused; it runs
            at a lower OS priority and dies with the service), so that a CPU-bound handler does
            not hold the serving process's GIL; the handler must pickle (a module-level function
            or a ``functools.partial`` of one).
        max_attempts: Attempts of a job that meets outages before it fails.
        retry_delay: Seconds before the first retry; doubled for each later one.
        worker_options: ``WorkerProcess`` arguments (``nice``, ``torch_threads``).
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
        max_attempts: int = 6,
        retry_delay: float = 5.0,
        worker_options: dict | None = None,
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
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.worker_options = worker_options or {}
        self._workers: dict[int, WorkerProcess] = {}  # worker thread ident -> its process
        self._workers_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._finished = threading.Condition()
        self._active: dict[str, Attempt] = {}
        self._active_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.listeners: list[Callable[[], None]] = []  # called when a local job changes
        # called with each attempt's stored outcome: "succeeded", "failed" or "requeued"
        self.ended: list[Callable[[str], None]] = []

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
        """Stop: end the worker processes and give their running jobs back to the queue.

        Jobs run in threads (``isolate=False``) stop at their next progress report, or finish
        within ``timeout`` seconds; they are requeued too and cannot record a result.
        """
        self._stop.set()
        self._wake.set()
        with self._active_lock:
            active = list(self._active.values())
        for attempt in active:
            attempt.stop("the service is shutting down")
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        with self._workers_lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()
        for attempt in active:
            try:
                note = f"requeued: the service running it ({self.worker_id}) shut down"
                self.store.release(attempt.job_id, attempt.lease, note)
            except Exception as exc:  # the store is down: the job is recovered as stale later
                self._log_outage(f"requeue job {attempt.job_id}", exc, 1)

    def cancel(self, job_id: str) -> None:
        """Stop the local attempt of ``job_id``, if this runner runs it (its process is ended)."""
        with self._active_lock:
            attempt = self._active.get(job_id)
        if attempt is not None:
            attempt.stop(f"job {job_id} was cancelled")

    def wake(self) -> None:
        """Look for queued jobs now instead of after the poll interval."""
        self._wake.set()

    def _notify(self) -> None:
        with self._finished:
            self._finished.notify_all()
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:  # a closed event loop at shutdown
                log.debug("job listener failed", exc_info=True)

    def wait(self, job_id: str, timeout: float) -> dict:
        """The job once it has finished, or as it is after ``timeout`` seconds (blocking)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            remaining = deadline - time.monotonic()
            if job["status"] in FINAL_STATUSES or remaining <= 0:
                return job
            with self._finished:  # woken by this runner; polls for jobs run by other replicas
                self._finished.wait(min(remaining, 0.25))

    def holds(self, worker: str) -> bool:
        """Whether ``worker`` is one of this runner's threads: alive for sure (another process's
        pid tells nothing once a restarted container reuses it, as PID 1 does)."""
        return worker.split("/", 1)[0] == self.worker_id

    def _recover(self) -> None:
        try:
            self.store.recover_stale(self.kind, self.stale_after, process_gone, self.holds)
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
            self._run(job)
        with self._workers_lock:
            worker = self._workers.pop(threading.get_ident(), None)
        if worker is not None:
            worker.close()

    def _run(self, job: dict) -> None:
        attempt = Attempt(job["job_id"], job["lease"])
        log.info("%s job %s (run %s) attempt %s started", self.kind, attempt.job_id,
                 job.get("run_id"), job.get("attempts"))  # fmt: skip
        with self._active_lock:
            self._active[attempt.job_id] = attempt
        try:
            outcome, value = self._outcome(job, attempt)
            self._record(attempt, outcome, value)
        finally:
            with self._active_lock:
                self._active.pop(attempt.job_id, None)
            self._notify()

    def _outcome(self, job: dict, attempt: Attempt) -> tuple[str, Any]:
        return outcome_of(lambda: self._call(job, attempt), attempt, self.kind)

    def _context_callbacks(self, attempt: Attempt):
        def report(fraction: float, stage: str) -> bool:
            if attempt.stop_reason is not None:
                return False
            try:
                held = self.store.report_progress(attempt.job_id, attempt.lease, fraction, stage)
            except Exception as exc:  # a store outage must not fail the job; heartbeats retry
                self._log_outage(f"store progress of job {attempt.job_id}", exc, 2)
                return True
            if not held:
                attempt.stop(self._lost_reason(attempt))
                return False
            self._notify()
            return True

        def fence() -> str | None:
            if attempt.stop_reason is not None:
                return attempt.stop_reason
            try:  # from here on the job cannot be cancelled: what it publishes stands
                # waits for another job of the run publishing: longer than its recovery takes
                wait = max(PUBLISH_TURN_WAIT_S, 4 * self.stale_after)
                reason = self.store.start_publishing(
                    attempt.job_id, attempt.lease, wait, stopped=lambda: attempt.stop_reason
                )
            except Exception as exc:  # cannot prove the lease: do not publish
                return f"the job store cannot confirm this attempt's lease ({exc})"
            if reason is not None:
                attempt.stop(reason)
            return reason

        return report, fence

    def _call(self, job: dict, attempt: Attempt):
        report, fence = self._context_callbacks(attempt)
        if not self.isolate:
            return call_handler(self.handler, job, JobContext(report, fence))
        ident = threading.get_ident()
        with self._workers_lock:
            worker = self._workers.get(ident)
            if worker is None or not worker.alive:
                worker = self._workers[ident] = WorkerProcess(**self.worker_options)
        try:
            return worker.run(self.handler, job, report, fence, lambda: attempt.stop_reason)
        except (JobStopped, WorkerDied):
            with self._workers_lock:
                self._workers.pop(ident, None)
            worker.close(grace=0)
            raise

    def _lost_reason(self, attempt: Attempt) -> str:
        try:
            return self.store.lost_reason(attempt.job_id, attempt.lease) or "lease lost"
        except Exception:
            return "lease lost"

    def retry_wait(self, attempts: int) -> float:
        """Seconds a job waits after its ``attempts``-th attempt met an outage: ``retry_delay``,
        doubled for each later attempt (the defaults wait 5, 10, 20, 40 and 80 s: 2.5 minutes
        in all, beyond an MLflow restart, before the 6th attempt's outage fails the job)."""
        return self.retry_delay * 2 ** max(attempts - 1, 0)

    def _record(self, attempt: Attempt, outcome: str, value) -> None:
        """Store the outcome, retrying through a store outage.

        A success is retried for as long as the service runs: its result is published already,
        and a job given up here would be recovered as stale and run (and published) again. The
        attempt stays active meanwhile, so its heartbeat holds the job once the store is back.
        Other outcomes are given up after ``RECORD_TRIES`` (the stale job is recovered later).
        """
        job_id, lease = attempt.job_id, attempt.lease
        if outcome == "stopped":
            log.warning("%s job %s attempt stopped: %s", self.kind, job_id, value)
            return
        for n in itertools.count(1):
            try:
                if outcome == "retry":
                    delay = self.retry_wait(self.store.get(job_id)["attempts"])
                    done = self.store.retry(job_id, lease, value, delay, self.max_attempts)
                else:
                    done = getattr(self.store, outcome)(job_id, value, lease)
            except PipelineError as exc:  # e.g. the job was cancelled or taken over meanwhile
                log.warning("could not %s job %s: %s", outcome, job_id, exc)
                return
            except Exception as exc:
                self._log_outage(f"{outcome} job {job_id}", exc, n)
                if n >= RECORD_TRIES and (outcome != "succeed" or self._stop.is_set()):
                    break
                first, most = RECORD_BACKOFF_S
                time.sleep(min(first * 2**n, most))
            else:  # stored: what follows is no reason to store it again
                self._log_end(done)
                return
        log.error("gave up recording job %s; it will be recovered as stale", job_id)

    def _log_end(self, job: dict) -> None:
        """The line of an attempt's end as stored: succeeded (INFO; with its time since the
        attempt started), failed or requeued after an outage (WARNING, with the job's words);
        the ``ended`` listeners are told which."""
        what = f"{self.kind} job {job['job_id']} (run {job.get('run_id')}) attempt " + str(
            job.get("attempts")
        )
        outcome = job.get("status") if job.get("status") in ("succeeded", "failed") else "requeued"
        for listener in list(self.ended):
            try:  # never a reason to record the outcome again (_record retries on errors)
                listener(outcome)
            except Exception:
                log.warning("job outcome listener failed", exc_info=True)
        if outcome == "succeeded":
            took = ""
            if job.get("started_at") and job.get("finished_at"):
                took = f" in {(job['finished_at'] - job['started_at']).total_seconds():.1f} s"
            log.info("%s succeeded%s", what, took)
        elif outcome == "failed":
            log.warning("%s failed: %s", what, job.get("error"))
        else:
            log.warning("%s: %s", what, job.get("note"))

    def _beat(self) -> None:
        last_recovery = time.monotonic()
        while not self._stop.wait(self.heartbeat_interval):
            with self._active_lock:
                active = list(self._active.values())
            for attempt in active:
                try:
                    if not self.store.heartbeat(attempt.job_id, attempt.lease):
                        attempt.stop(self._lost_reason(attempt))
                        log.warning("job %s: %s", attempt.job_id, attempt.stop_reason)
                except Exception as exc:
                    self._log_outage(f"heartbeat job {attempt.job_id}", exc, 1)
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
