"""The job as the API shows it (``JobOut``) and the facade routes use (``JobService``)."""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel, Field, ValidationError

from common import Conflict
from jobs.jobstore import JobStore
from jobs.runner import JobRunner
from jobs.store import FINAL_STATUSES, Status
from jobs.waiting import JobWatcher, client_gone

log = logging.getLogger(__name__)

T = TypeVar("T")

STORE_THREADS = 4
"""Threads per pool that run the blocking part of job routes: one pool for submissions (request
check and store call), one for job reads and cancels, so that submissions whose check waits on a
hung MLflow never hold up the job polls of the dashboard.

A few dedicated threads, not the 40 of the shared pool: under 50 concurrent clients, 40 threads
contending for the GIL with the event loop made each store call wait for hand-overs
(``benchmarks/bench_evaluator.py``: submission p99 106 -> 70-89 ms, throughput +20 %); one thread
let one slow call (a write waiting for the store's lock) hold up every submission (p99 ~370 ms).
"""


class Progress(BaseModel):
    """How far a job is: 0 when queued, 1 when succeeded, reported by the handler meanwhile."""

    fraction: float = Field(ge=0, le=1, description="done share of the work, 0-1")
    stage: str = Field(description="what it does now, such as 'attributions 5/16'")


class JobOut(BaseModel):
    """A job as the API shows it; poll ``url`` until ``status`` is succeeded or failed."""

    job_id: str
    kind: str
    run_id: str
    status: Status
    inputs: dict[str, Any]
    progress: Progress
    attempts: int = Field(0, description="claims so far (a retry or a takeover adds one)")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(None, description="why the job failed")
    result: dict[str, Any] | None = Field(None, description="the handler's result")
    note: str | None = Field(None, description="for example why the job was requeued")
    reused: bool = Field(False, description="an earlier job with the same inputs was returned")
    url: str = Field(description="where to poll this job")

    @classmethod
    def from_job(cls, job: dict, reused: bool = False) -> "JobOut":
        progress = job.get("progress") or {
            "fraction": 1.0 if job["status"] == "succeeded" else 0.0,
            "stage": job["status"],
        }
        fields = {**job, "progress": progress, "attempts": job.get("attempts") or 0}
        try:
            return cls(**fields, reused=reused, url=f"/jobs/{job['job_id']}")
        except ValidationError as exc:  # edited by hand, or written by another version
            wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise Conflict(
                f"the job store's record of job {job['job_id']} is damaged ({wrong[:300]}); "
                "remove it from the store (jobs collection) and submit the work again."
            ) from exc

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


def request_as_sent(body: BaseModel, data_root: object) -> dict:
    """A submission's body as sent, without ``force``, with the ``DATA_DIR`` its paths resolve
    under: the ``request`` of :meth:`JobService.submit`."""
    return {**body.model_dump(mode="json", exclude={"force"}), "root": str(data_root)}


class JobService:
    """The facade routes use: submit a job, wait for it, cancel it, answer 202 or 200."""

    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        watcher: JobWatcher | None = None,
        max_queued: int | None = None,
        still_there: Callable[[dict], bool] | None = None,
    ) -> None:
        """``still_there(job)``: whether a succeeded job's result is still its run's current one
        where it was published (``runs.result_current``); one that is not is made again, not
        reused."""
        self.store = store
        self.runner = runner
        self.kind = runner.kind
        self.watcher = watcher or JobWatcher(store)
        self.max_queued = max_queued
        self.still_there = still_there or (lambda job: True)
        self.readiness: str | None = None  # why /ready last said not ready (None: ready)
        self._reads = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix=f"{self.kind}-read")
        self._submits = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix=f"{self.kind}-submit")

    def note_readiness(self, problem: str | None) -> None:
        """Log what ``/ready`` says when it changes (``problem``: why not ready, None: ready):
        a probe's own log line says only the status, and a line at every probe would flood."""
        if problem != self.readiness:
            if problem is not None:
                log.warning("%s not ready: %s", self.kind, problem)
            elif self.readiness is not None:
                log.info("%s ready again", self.kind)
            self.readiness = problem

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the service's read threads, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._reads, function, *args)

    def close(self) -> None:
        """Stop the store threads (at shutdown, after the last request)."""
        for pool in (self._submits, self._reads):
            pool.shutdown(wait=True, cancel_futures=True)

    async def submit(
        self,
        run_id: str,
        inputs: dict | Callable[[], dict],
        force: bool = False,
        request: dict | None = None,
    ) -> JobOut:
        """Queue a job (or return the equal one that exists) and wake the runner.

        ``inputs`` may be a function that checks the request and returns the inputs (such as the
        evaluator's ``prepare_inputs``): it runs in the same thread hop as the store call.
        ``request``, the body as sent: a repeat of a body whose job is still queued or running
        gets that job without running ``inputs()`` again (clients that poll by resubmitting).
        A full queue refuses before ``inputs()`` runs (its MLflow calls and data checks), unless
        a job exists that could be the answer: one this same body queued, which has not failed
        or been cancelled (with ``force``: is queued or running; ``JobStore.check_room``).

        Raises:
            TooManyRequests: The queue holds ``max_queued`` jobs already.
            Whatever ``inputs()`` raises (NotFound, InvalidInput, ServiceUnavailable).
        """

        def submit() -> tuple[dict, bool]:
            if request is not None:
                active = self.store.active_for(self.kind, run_id, request)
                if active is not None:
                    return active, True
            if self.max_queued is not None:
                self.store.check_room(self.kind, run_id, self.max_queued, force, request)
            values = inputs() if callable(inputs) else inputs
            job, reused = self.store.submit(
                self.kind, run_id, values, force, self.max_queued, request
            )
            if reused and job["status"] == "succeeded" and not self.still_there(job):
                # e.g. MLflow restored from a backup older than the store's: made again, as
                # with force
                job, reused = self.store.submit(
                    self.kind, run_id, values, True, self.max_queued, request
                )
            return job, reused

        loop = asyncio.get_running_loop()
        job, reused = await loop.run_in_executor(self._submits, submit)
        if not reused:
            log.info("%s job %s queued for run %s", self.kind, job["job_id"], run_id)
            self.runner.wake()
        return JobOut.from_job(job, reused=reused)

    async def wait(
        self, job: dict, seconds: float, until_final: bool = True, client: Request | None = None
    ) -> dict:
        """``job`` once finished (or changed, ``until_final=False``), or after ``seconds``, or
        once ``client`` (the waiting request) hung up."""
        gone = client_gone(client) if client is not None else None
        return await self.watcher.wait(job, seconds, until_final, gone)

    async def respond(
        self,
        run_id: str,
        inputs: dict | Callable[[], dict],
        force: bool,
        wait: float,
        response: Response,
        request: dict | None = None,
        client: Request | None = None,
    ) -> JobOut:
        """Submit, wait up to ``wait`` seconds (less if ``client``, the HTTP request, hangs up),
        and set 200 (finished) or 202 (not yet)."""
        job = await self.submit(run_id, inputs, force, request)
        if wait > 0 and not job.finished:
            done = await self.wait(job.model_dump(exclude={"reused", "url"}), wait, client=client)
            job = JobOut.from_job(done, reused=job.reused)
        response.status_code = 200 if job.finished else 202
        return job

    async def cancel(self, job_id: str) -> JobOut:
        """Cancel a queued or running job; a running one's worker process is ended."""
        job = await self.call(self.store.cancel, job_id, self.kind)
        log.info("%s job %s (run %s) cancelled", self.kind, job_id, job.get("run_id"))
        self.runner.cancel(job_id)
        self.watcher.poke()
        try:
            return JobOut.from_job(job)
        except Conflict as exc:  # cancelled all the same: say so, not only that it is damaged
            raise Conflict(f"job {job_id} is cancelled; {exc}") from exc


# Dependencies that do no blocking work are ``async def``: FastAPI runs a plain ``def`` in the
# thread pool, one hop per dependency per request, and under 50 concurrent clients those hops
# (GIL hand-overs) were most of a submission's latency.


async def get_job_service(request: Request) -> JobService:
    """Dependency: the app's ``JobService``."""
    return request.app.state.jobs
