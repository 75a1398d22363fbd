"""Jobs of the evaluator and explainer, and the MongoDB (or embedded) store they live in.

- ``get_database(settings)``: pymongo ``Database`` for ``MONGO_URI``, else the embedded store.
- ``JobStore`` / ``SelectionStore``: the ``jobs`` and ``selections`` collections (the latter's
  records sealed: ``SelectionStore.problems``, ``SEALED_UNDER_OTHER_TOKEN``).
- ``JobRunner``: claims queued jobs and runs a handler on them (worker process or thread);
  ``JobContext`` is what a handler reports progress through and fences its publishing with.
- ``create_job_app`` and the route helpers: the job API that ``evaluator.app`` and
  ``explainer.app`` build on; ``error_responses`` documents a route's error answers with their
  models, ``check_token`` is the start-up rule for ``PIPELINE_API_TOKEN``.
- ``service_app`` (``jobs.shell``): the app shell of every service, the predictor's too: the token
  rule and ``require_token``, offline ``/docs`` (``add_docs``), the 422 handler
  (``validation_error``), JSON errors never a bare 500 (``add_error_answers``); the token gate
  and the body limits that act before routing (``jobs.intake``: ``TokenGate``, ``BodyLimit``),
  and ``GET /metrics`` for Prometheus (``jobs.metrics``; ``ServiceMetrics``, ``app.state.metrics``,
  is where a service registers metrics of its own).
- ``jobs.protocol.BoundedHead``: the HTTP protocol below it all (``uvicorn --http
  jobs.protocol:BoundedHead``, named by import string, not imported here): 431 for a request line
  and headers over 64 KiB, before the token gate could see them.
"""

from jobs.answers import ErrorOut, error_responses
from jobs.api import (
    RunId,
    WaitSeconds,
    create_job_app,
    get_job_service,
    submission_responses,
)
from jobs.docs import add_docs
from jobs.intake import BodyLimit, TokenGate, route_path
from jobs.jobstore import JobStore
from jobs.metrics import ServiceMetrics
from jobs.readiness import store_unavailable
from jobs.runner import Handler, JobRunner
from jobs.seal import OTHER_TOKEN as SEALED_UNDER_OTHER_TOKEN
from jobs.security import (
    InsecureToken,
    JsonBool,
    JsonInt,
    PathText,
    add_error_answers,
    check_token,
    route_error,
    validation_error,
)
from jobs.selections import SelectionStore
from jobs.service import JobOut, JobService, Progress, request_as_sent
from jobs.shell import get_app_settings, require_token, service_app
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
    "BodyLimit",
    "ErrorOut",
    "Handler",
    "InsecureToken",
    "JobContext",
    "JobOut",
    "JobRunner",
    "JobService",
    "JobStopped",
    "JobStore",
    "JsonBool",
    "JsonInt",
    "PathText",
    "Progress",
    "RunId",
    "SelectionStore",
    "ServiceMetrics",
    "Status",
    "TokenGate",
    "WaitSeconds",
    "add_docs",
    "add_error_answers",
    "check_token",
    "create_job_app",
    "error_responses",
    "get_app_settings",
    "get_database",
    "get_job_service",
    "request_as_sent",
    "require_token",
    "route_error",
    "route_path",
    "service_app",
    "store_unavailable",
    "submission_responses",
    "validation_error",
]
