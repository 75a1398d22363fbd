"""``GET /ready`` of the job services, and the answer to a failed store operation.

``/ready`` checks MLflow and the store at the same time and answers within ``READY_WITHIN_S``:
the readiness probes of Kubernetes give up after 4.5 s, and a probe that times out reports
nothing of why. A store whose write lock another process holds waits 10 s for it, and MLflow and
MongoDB both down took 3 s each, one after the other.
"""

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from common import ServiceUnavailable, Settings, redact_uri
from jobs import store as stores
from jobs.fileformat import StoreFormatError
from jobs.jobstore import JobStore
from jobs.pages import quick_check
from jobs.service import JobService, get_job_service
from jobs.shell import get_app_settings
from jobs.store import STORE_ERRORS, mongo_unavailable

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
    if settings.mongo_uri:
        return mongo_unavailable(redact_uri(settings.mongo_uri), exc)
    where = f"the embedded store in {settings.store_dir}"
    text = stores.without_content(str(exc))  # never a record's content in an answer
    if "readonly" in text or "read-only" in text:
        return ServiceUnavailable(
            f"{where} is read-only ({text}): the service cannot record jobs; make STORE_DIR and "
            "its files writable by the service's user, or set MONGO_URI to a MongoDB server."
        ).needs_operator()
    if "locked" in text:
        return ServiceUnavailable(
            f"{where} is busy ({text}): another process holds its write lock too long; retry, "
            "or set MONGO_URI to a MongoDB server."
        )
    if isinstance(exc, StoreFormatError):  # names the file and what to do
        return ServiceUnavailable(text).needs_operator()
    if "deleted or replaced" in text:
        return ServiceUnavailable(f"{where} is gone: {text}").needs_operator()
    if stores.is_damage(exc):  # the restore advice, and no record's content in the answer
        return stores.damaged(settings, exc)
    if "malformed JSON" in text or "Could not decode" in text:  # one record, or the file?
        name = stores.store_file(settings)
        try:  # overwritten pages read as bad JSON too, and the one-record query then fails
            if found := quick_check(name, "ro", 1):
                return stores.damaged(settings, f"database disk image is malformed ({found})")
        except sqlite3.DatabaseError as damage:  # not a database any more, or busy
            if stores.is_damage(damage):
                return stores.damaged(settings, damage)
        return ServiceUnavailable(
            f"{where}: a record is not valid JSON text ({text}), edited by hand or damaged; find "
            f'it with sqlite3 {name} "SELECT _id FROM jobs WHERE NOT json_valid(doc)" (and in '
            "selections), then fix or delete it"
        ).needs_operator()
    return ServiceUnavailable(
        f"{where} failed ({type(exc).__name__}: {text}); check STORE_DIR (disk full, "
        "permissions), or set MONGO_URI to a MongoDB server."
    )


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
    if settings.mongo_uri:
        return ServiceUnavailable(
            f"MongoDB at {redact_uri(settings.mongo_uri)} did not take a write within "
            f"{READY_WITHIN_S:g} s; check that it runs and is not overloaded"
        )
    return ServiceUnavailable(
        f"the embedded store in {settings.store_dir} did not take a write within "
        f"{READY_WITHIN_S:g} s: another process holds its write lock; retry, or set MONGO_URI "
        "to a MongoDB server"
    )


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
    store = "mongodb" if settings.mongo_uri else "embedded"
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
