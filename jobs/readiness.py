"""``GET /ready`` of the job services, and the answer to a failed store operation.

``/ready`` checks MLflow and the store at the same time and answers within ``READY_WITHIN_S``:
the readiness probes of Kubernetes give up after 4.5 s, and a probe that times out reports
nothing of why. A store whose write lock another process holds waits 10 s for it, and MLflow and
MongoDB both down took 3 s each, one after the other.
"""

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from common import ServiceUnavailable, Settings, redact_uri
from jobs import store as stores
from jobs.backend import backend
from jobs.jobstore import JobStore
from jobs.service import JobService, get_job_service
from jobs.store import STORE_ERRORS
from service import get_app_settings

READY_WITHIN_S = 3.5
"""``/ready`` answers within this many seconds (the k8s probes wait 4.5 s for it, and Kubernetes
5 s for the probe, which starts a Python first): a check still running then
is reported as not answering in time; its thread is left to end by itself. Each check has a
timeout of its own, 3 s (MLflow's request, MongoDB's server selection by default)."""

ready_router = APIRouter(tags=["jobs"])


def store_unavailable(settings: Settings, exc: Exception) -> ServiceUnavailable:
    """The user-facing error for a failed operation on the store that ``settings`` name."""
    if isinstance(exc, ServiceUnavailable):
        return exc
    return backend(settings).unavailable(exc)


def _mlflow_check(uri: str) -> ServiceUnavailable | None:
    """Why MLflow at ``uri`` is not usable; None when it answers."""
    from runs import check_tracking  # here: it imports torch and MLflow, ~10 s for a toy service

    try:
        check_tracking(uri, 3)
    except ServiceUnavailable as exc:
        return exc
    return None


def _store_check(store: JobStore, settings: Settings) -> ServiceUnavailable | None:
    """Why the store does not take a write; None when it does."""
    try:
        store.probe()
        stores.check_pages(store.db)  # pages overwritten: the probe's write can still succeed
    except Exception as exc:
        return store_unavailable(settings, exc)  # may read the file: inside the time bound
    return None


_LATE = object()


async def _within(check: Callable[..., Any], *args: Any) -> Any:
    """``check(*args)`` run in a thread, or ``_LATE`` when it has not returned within
    ``READY_WITHIN_S`` (it is left to end in its thread)."""
    with anyio.move_on_after(READY_WITHIN_S):
        return await anyio.to_thread.run_sync(check, *args, abandon_on_cancel=True)
    return _LATE


async def _mlflow_problem(uri: str) -> ServiceUnavailable | None:
    found = await _within(_mlflow_check, uri)
    if found is not _LATE:
        return found
    return ServiceUnavailable(
        f"MLflow tracking server at {redact_uri(uri)} did not answer within "
        f"{READY_WITHIN_S:g} s; check that it runs and is not overloaded"
    )


async def _store_problem(store: JobStore, settings: Settings) -> ServiceUnavailable | None:
    found = await _within(_store_check, store, settings)
    if found is not _LATE:
        return found
    return backend(settings).late(READY_WITHIN_S)


@ready_router.get("/ready")
async def ready(
    jobs: Annotated[JobService, Depends(get_job_service)],
    settings: Annotated[Settings, Depends(get_app_settings)],
) -> dict[str, str]:
    """200 when MLflow answers and the store takes a write; 503 naming each one that does not
    (logged when that changes: the probe's own log lines say only the status). Both are checked
    at once, and one that has not answered within ``READY_WITHIN_S`` is named as not answering.

    The store check writes, reads back and deletes a probe record (for the embedded store, in
    the file that is still on disk), so a read-only, deleted or unreachable store is not ready;
    nor is an embedded store whose file is damaged (SQLite's quick_check, every few seconds).
    """
    found = await asyncio.gather(
        _mlflow_problem(settings.mlflow_tracking_uri), _store_problem(jobs.store, settings)
    )
    problems = [problem for problem in found if problem is not None]
    said = "; ".join(str(p).rstrip(".") for p in problems) or None
    jobs.note_readiness(said)
    if said is not None:
        not_ready = ServiceUnavailable(f"not ready: {said}")
        if any(p.retry_after is None for p in problems):  # an operator must act first
            not_ready.needs_operator()
        raise not_ready
    store = backend(settings).name
    return {"status": "ready", "mlflow": redact_uri(settings.mlflow_tracking_uri), "store": store}


def add_store_errors(app: FastAPI) -> None:
    """Store outages → 503 naming the store and what to do."""

    async def store_error(request: Request, exc: Exception) -> JSONResponse:
        # off the event loop: the answer may run the store's page check
        error = await run_in_threadpool(store_unavailable, request.app.state.settings, exc)
        after = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
        return JSONResponse(status_code=503, content={"detail": str(error)}, headers=after)

    for error in STORE_ERRORS:
        app.add_exception_handler(error, store_error)
