"""Jobs of the evaluator and explainer, and the MongoDB (or embedded) store they live in.

- ``get_database(settings)``: pymongo ``Database`` for ``MONGO_URI``, else the embedded store.
- ``JobStore`` / ``SelectionStore``: the ``jobs`` and ``selections`` collections (the latter's
  records sealed: ``SelectionStore.problems``, ``SEALED_UNDER_OTHER_TOKEN``).
- ``JobRunner``: claims queued jobs and runs a handler on them (worker process or thread);
  ``JobContext`` is what a handler reports progress through and fences its publishing with.
- ``create_job_app`` and the route helpers: the job API that ``evaluator.app`` and
  ``explainer.app`` build on, on the app shell of every service (``service.service_app``: the
  token, offline docs, error answers, body limits and ``/metrics``); ``jobs.jobmetrics`` adds a
  job service's queue and attempt outcomes to its metrics.
"""

from jobs.api import (
    RunId,
    WaitSeconds,
    create_job_app,
    get_job_service,
    submission_responses,
)
from jobs.jobstore import JobStore
from jobs.readiness import store_unavailable
from jobs.runner import Handler, JobRunner
from jobs.seal import OTHER_TOKEN as SEALED_UNDER_OTHER_TOKEN
from jobs.selections import SelectionStore
from jobs.service import JobOut, JobService, Progress, request_as_sent
from jobs.store import (
    FINAL_STATUSES,
    STATUSES,
    STORE_ERRORS,
    Status,
    get_database,
)
from jobs.worker import JobContext, JobStopped

__all__ = [
    "FINAL_STATUSES",
    "SEALED_UNDER_OTHER_TOKEN",
    "STATUSES",
    "STORE_ERRORS",
    "Handler",
    "JobContext",
    "JobOut",
    "JobRunner",
    "JobService",
    "JobStopped",
    "JobStore",
    "Progress",
    "RunId",
    "SelectionStore",
    "Status",
    "WaitSeconds",
    "create_job_app",
    "get_database",
    "get_job_service",
    "request_as_sent",
    "store_unavailable",
    "submission_responses",
]
