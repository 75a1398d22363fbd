"""What the evaluator's and explainer's thin ``app.py`` share: the job API around a handler.

``create_job_app`` builds a FastAPI app whose lifespan opens the store and runs a ``JobRunner``
for one job kind, adds ``GET /jobs/{job_id}``, ``GET /jobs``, ``GET /health`` and ``GET /ready``,
``DELETE /jobs/{job_id}``, the Bearer-token check (when ``PIPELINE_API_TOKEN`` is set;
``service.security`` refuses weak tokens at start-up, ``service.intake`` checks the token and limits
bodies before routing), offline ``/docs``
(``service.docs``) and error handlers that turn ``PipelineError`` and store outages into clear JSON
answers. The hot routes are ``async``: store calls run in the thread pool, waits (``?wait=``) on
one shared ``JobWatcher``. A route only validates its input and hands it to ``JobService``::

    from fastapi import APIRouter, Depends, Response
    from pydantic import BaseModel

    from jobs import JobOut, JobService, WaitSeconds, create_job_app, get_job_service
    from evaluator.evaluate import run_job   # handler(job: dict, ctx) -> dict, raises InvalidInput

    router = APIRouter()

    class EvaluateIn(BaseModel):
        run_id: str
        force: bool = False

    @router.post("/evaluate", response_model=JobOut, status_code=202)
    async def evaluate(body: EvaluateIn, response: Response, wait: WaitSeconds = 0,
                       jobs: JobService = Depends(get_job_service)) -> JobOut:
        # inputs: a dict, or a function that checks the request (raising InvalidInput /
        # NotFound) and returns the dict; it runs off the event loop with the store call.
        return await jobs.respond(body.run_id, {}, body.force, wait, response)  # 202, 200 if done

    app = create_job_app("evaluate", "Evaluator", router, evaluate_job)
"""

import asyncio
import logging
import math
import re
from collections.abc import Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import AfterValidator, BeforeValidator, Field

from common import (
    Conflict,
    Settings,
    freeze_startup_heap,
    get_settings,
)
from jobs import store as stores
from jobs.jobmetrics import add_job_metrics
from jobs.jobstore import JobStore
from jobs.readiness import add_store_errors, ready_router
from jobs.runner import Handler, JobRunner
from jobs.service import JobOut, JobService, Status, get_job_service
from jobs.store import get_database
from jobs.waiting import JobWatcher
from service import (
    error_responses,
    require_token,
    service_app,
    unique_keys,
    unparsable_body,
)

log = logging.getLogger(__name__)

RUN_ID_PATTERN = "^[0-9a-fA-F]{1,64}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)


def _check_run_id(value: str) -> str:
    if not _RUN_ID.fullmatch(value):
        raise ValueError(
            "run_id must be an MLflow run id of hex digits, such as the trainer's last output "
            f"line or the id shown in the MLflow UI; got {value[:80]!r}"
        )
    return value


RunId = Annotated[
    str,
    AfterValidator(_check_run_id),
    Field(
        description="MLflow run id of a trained model (32 hex digits)",
        examples=["0123456789abcdef0123456789abcdef"],
        # Documented only: the validator above says in words what a run id is.
        json_schema_extra={"pattern": RUN_ID_PATTERN, "minLength": 1, "maxLength": 64},
    ),
]
"""The ``run_id`` of a request body: hex digits, and a message that says where to find one."""

MAX_WAIT_S = 600


def _wait_seconds(value: Any) -> float:
    """``?wait=`` as seconds, 0 to ``MAX_WAIT_S``; one message for every other value (``nan``
    failed "less than or equal to 600", which it is not either)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0 <= seconds <= MAX_WAIT_S:  # false for NaN too
        raise ValueError(
            f"wait must be a number of seconds from 0 to {MAX_WAIT_S}, such as ?wait=30; got "
            f"{str(value)[:40]!r}"
        )
    return seconds


WaitSeconds = Annotated[
    float,
    Query(ge=0, le=MAX_WAIT_S, description="Wait up to this many seconds for the job to finish."),
    BeforeValidator(_wait_seconds),
]

ChangeWaitSeconds = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT_S,
        description="Wait up to this many seconds for the job's status or progress to change.",
    ),
    BeforeValidator(_wait_seconds),
]


def submission_responses(s422: str) -> dict[int | str, dict]:
    """The documented answers of a service's ``POST`` that queues a job (202 is the route's own):
    ``s422`` says what makes that service's request unusable."""
    return {
        200: {"model": JobOut, "description": "the job is finished (with ?wait=) or reused"},
        **error_responses(401, 403, 404, 408, 413, 422, 429, 503, s422=s422),
    }


jobs_router = APIRouter(tags=["jobs"])
health_router = APIRouter(tags=["health"])


@jobs_router.get("/jobs/{job_id}", response_model=JobOut, responses=error_responses(404, 409, 422))
async def get_job(
    job_id: str,
    jobs: Annotated[JobService, Depends(get_job_service)],
    http: Request,
    wait: ChangeWaitSeconds = 0,
) -> JobOut:
    """One job; 404 when there is none with that id.

    With ``?wait=S`` the answer comes when the job's status or progress changes (or after S
    seconds, unchanged): poll with it instead of in a loop.
    """
    job = await jobs.call(jobs.store.get, job_id, jobs.kind)
    if wait > 0:
        job = await jobs.wait(job, wait, until_final=False, client=http)
    return JobOut.from_job(job)


@jobs_router.delete(
    "/jobs/{job_id}", response_model=JobOut, responses=error_responses(404, 409, 422)
)
async def cancel_job(job_id: str, jobs: Annotated[JobService, Depends(get_job_service)]) -> JobOut:
    """Cancel a queued or running job (its worker process is ended): status ``cancelled``.

    404 when there is no such job, 409 when it has already finished.
    """
    return await jobs.cancel(job_id)


@jobs_router.get("/jobs", response_model=list[JobOut], responses=error_responses(404, 422))
async def list_jobs(
    jobs: Annotated[JobService, Depends(get_job_service)],
    run_id: Annotated[
        str | None,
        AfterValidator(lambda value: value if value is None else _check_run_id(value)),
        # the pattern documented only: the validator says in words what a run id is
        Query(description="only this run's jobs", json_schema_extra={"pattern": RUN_ID_PATTERN}),
    ] = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[
        str | None, Query(description="a job id: only jobs created before it (the next page)")
    ] = None,
) -> list[JobOut]:
    """This service's jobs, newest first; the next page: ``before=<job_id of the last>``."""
    before = before or None  # before= (empty): the first page
    found = await jobs.call(partial(jobs.store.list, jobs.kind, run_id, status, limit, before))
    listed = []
    for job in found:
        try:
            listed.append(JobOut.from_job(job))
        except Conflict as exc:  # a damaged record: one GET of it says so (409), the rest list
            log.warning("left out of a listing: %s", exc)
    return listed


@health_router.get("/health")
async def health() -> dict[str, str]:
    """The process is serving (no token needed; answered on the event loop, no thread; ``HEAD``
    too, for load balancers that probe with it)."""
    return {"status": "ok"}  # what service.intake.HealthFastPath sends; this route documents it


def create_job_app(
    kind: str,
    title: str,
    router: APIRouter,
    handler: Handler,
    settings: Settings | None = None,
    runner_options: dict | None = None,
    warm_up: Callable[[], None] | None = None,
    still_there: Callable[[dict], bool] | None = None,
) -> FastAPI:
    """A FastAPI app that runs ``kind`` jobs with ``handler`` and serves ``router``.

    Args:
        kind: The job kind, such as ``"evaluate"``.
        title: Title of the OpenAPI docs at ``/docs``.
        router: The service's own routes (protected by the token like the shared ones).
        handler: ``handler(job) -> dict``, run off the request path by a ``JobRunner``.
        settings: Default ``common.get_settings()``.
        runner_options: Extra ``JobRunner`` arguments (``concurrency``, ``stale_after``, ...;
            ``isolate=True`` runs the handler in a worker process, off the serving GIL).
            ``max_attempts`` and ``retry_delay`` default to the settings ``JOB_MAX_ATTEMPTS``
            and ``JOB_RETRY_DELAY_S``.
        warm_up: Called once at start-up, before serving (such as ``runs.warm_up``), so that
            the first requests do not import for seconds; a failure is logged, not fatal.
        still_there: Whether a succeeded job's result still exists (``JobService``).

    Raises:
        InsecureToken: ``PIPELINE_API_TOKEN`` is set but empty, a placeholder or short.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings = app.state.settings
        db = get_database(settings, check=False)
        store = JobStore(db)
        options = {
            "max_attempts": settings.job_max_attempts,
            "retry_delay": settings.job_retry_delay_s,
            **(runner_options or {}),
        }
        runner = JobRunner(store, kind, handler, **options)
        watcher = JobWatcher(store)
        runner.listeners.append(watcher.poke)
        runner.ended.append(outcomes.ended)
        app.state.store, app.state.runner = store, runner
        app.state.jobs = JobService(store, runner, watcher, settings.max_queued_jobs, still_there)
        if warm_up is not None:
            try:
                await asyncio.to_thread(warm_up)
            except Exception:  # the first request meets the same problem and reports it
                log.warning("%s: warming up the request path failed", kind, exc_info=True)
        watcher.start()
        watcher.release_on_exit_signal()  # a stop is not held by the ?wait= requests
        await asyncio.to_thread(runner.start)
        frozen = freeze_startup_heap()  # after the imports of warm-up and runner
        log.debug("%s: %d start-up objects frozen out of full collections", kind, frozen)
        try:
            yield
        finally:
            # The runner stops whatever the watcher does (its stop is bounded): else the service
            # hangs in shutdown while it goes on claiming and running jobs.
            try:
                await watcher.stop()
            finally:
                await asyncio.to_thread(runner.stop)
                app.state.jobs.close()
                await asyncio.to_thread(stores.checkpoint, db)  # the records into the store file

    settings = settings or get_settings()
    limit = {
        "max_bytes": settings.max_body_bytes,
        "budget_bytes": settings.max_body_buffer_bytes,
        # Small JSON bodies, parsed as soon as they are read: their share comes back then, not
        # when a ?wait= of up to 600 s answers (or its client hung up meanwhile). The parsed
        # body stays until the answer: MAX_BODY_BYTES (64 KiB by default) keeps each one small.
        "hold_until_answered": False,
    }
    app = service_app(title, lifespan, settings, unparsable_body, limit)  # the token rule first
    stores.check_store(settings)  # a damaged file: one line, not a traceback at start-up
    auth = [Depends(require_token)]
    guarded = error_responses(401, 403, 503)
    app.include_router(router, dependencies=[*auth, Depends(unique_keys)], responses=guarded)
    app.include_router(jobs_router, dependencies=auth, responses=guarded)
    app.include_router(ready_router, dependencies=auth, responses=guarded)
    app.include_router(health_router)
    add_store_errors(app)
    outcomes = add_job_metrics(app, kind)  # /metrics: the queue and the attempts' outcomes
    return app
