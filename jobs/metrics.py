"""Prometheus metrics of every service: ``GET /metrics`` in the text format Prometheus scrapes.

``jobs.shell.service_app`` gives each app a ``ServiceMetrics`` (``app.state.metrics``) with a
``CollectorRegistry`` of its own (tests build many apps in one process; the global registry
would refuse the second app's metrics), the ``/metrics`` route, behind the token like every
route but ``/health``, and ``RequestMetrics``, the middleware that counts and times requests.
Every metric is named ``mlpipeline_...`` and labelled ``service`` (``ServiceMetrics.service``).

- ``mlpipeline_http_requests_total{route, method, status}`` and
  ``mlpipeline_http_request_duration_seconds{route}``: every answer but ``/health``'s, refusals
  before routing (401, 413, 408, a full body budget's 503) included. ``route`` is the route's
  template (``/jobs/{job_id}``), never the path sent (a label per job id would grow without
  end), ``unmatched`` for a path no route serves; a method no route could take is ``other``.
- A job service's (``add_job_metrics``): ``mlpipeline_jobs{status}``, its ``queued`` and
  ``running`` jobs counted in the store at each scrape; ``mlpipeline_job_attempts_total
  {outcome}``, attempts of this process that ended ``succeeded``, ``failed`` or ``requeued``
  (after an outage); ``mlpipeline_metrics_store_errors_total``, scrapes that could not count
  the jobs (the store is down: ``mlpipeline_jobs`` is left out of that scrape, and
  ``/metrics`` still answers).

The predictor adds its own (``predictor.metrics``) to ``ServiceMetrics.registry``.
"""

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi import routing as fastapi_routing
from fastapi.concurrency import run_in_threadpool
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobs.answers import error_responses
from jobs.intake import route_path

log = logging.getLogger(__name__)
# Each counter's and histogram's creation time as a series of its own (``*_created``) doubles the
# series for what Prometheus's own start-time tracking gives
disable_created_metrics()

METRICS_PATH = "/metrics"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as sent in the ``method`` label; any other is ``other`` (a client chooses the
method: a label per made-up one would grow without end)."""
UNMATCHED = "unmatched"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
"""Seconds: a prediction takes tens of milliseconds, a ``?wait=`` long poll up to 600 s."""
COUNTED_STATUSES = ("queued", "running")
ATTEMPT_OUTCOMES = ("succeeded", "failed", "requeued")


class ServiceMetrics:
    """The metrics of one service's app, in a registry of its own.

    Args:
        service: The value of every metric's ``service`` label, such as ``"evaluator"``.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlpipeline_http_requests",
            "HTTP requests answered, by route template, method and status (not /health).",
            ["service", "route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mlpipeline_http_request_duration_seconds",
            "Seconds from a request's arrival to the end of its answer, by route template.",
            ["service", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: str, seconds: float) -> None:
        """Count one answered request and its duration."""
        method = method if method in METHODS else "other"
        self.requests.labels(self.service, route, method, status).inc()
        self.duration.labels(self.service, route).observe(seconds)

    def exposition(self) -> bytes:
        """The registry's metrics in Prometheus's text format (runs the collectors: blocking)."""
        return generate_latest(self.registry)


class RouteTemplates:
    """Names a request by its route's template: ``scope["route"]``, set by routing; for a
    request refused before routing (a 401, 413 or 408), the template whose pattern its path
    matches, whatever the method; ``unmatched`` when no route serves its path."""

    def __init__(self) -> None:
        self._patterns: list[tuple[str, re.Pattern]] | None = None  # made at the first refusal

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            path = getattr(route, "path", None)
            return path if isinstance(path, str) and path else UNMATCHED
        if self._patterns is None:  # every route is added by now: the app is serving
            # routers included, flattened (FastAPI's own walk, not documented: without it, the
            # app's routes as listed)
            walk = getattr(fastapi_routing, "iter_route_contexts", None)
            contexts = walk(scope["app"].routes) if walk else scope["app"].routes
            paths = [p for c in contexts if isinstance(p := getattr(c, "path", None), str) and p]
            self._patterns = [(path, compile_path(path)[0]) for path in paths]
        sent = route_path(scope)
        return next((path for path, regex in self._patterns if regex.match(sent)), UNMATCHED)


class RequestMetrics:
    """ASGI middleware: counts and times each answer (``ServiceMetrics.observe``).

    It reads nothing of a request, only the status its answer starts with, so it sits outside
    the token gate and the body limits (refusals are counted too) and inside
    ``HealthFastPath`` (``/health`` costs nothing more). A request whose handling raised
    before any answer is counted as a 500 (the server answers it so); one that ended without
    an answer (its client gone) as ``none``.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = "none"

        async def counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting)
        except Exception:
            if status == "none":
                status = "500"
            raise
        finally:
            route = self.routes.of(scope)
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)


def add_metrics(app: FastAPI, service: str, dependencies: Iterable[Any]) -> ServiceMetrics:
    """Give ``app`` its ``ServiceMetrics`` (``app.state.metrics``) and ``GET /metrics``, guarded
    by ``dependencies`` (the token); the caller adds ``RequestMetrics`` where it belongs."""
    metrics = ServiceMetrics(service)
    app.state.metrics = metrics

    async def scrape(request: Request) -> Response:
        """The service's metrics in Prometheus's text format (docs/operations.md, Monitoring):
        requests by route and status, and a job service's queue and attempt outcomes or the
        predictor's served model. Needs the token like every route but ``/health``."""
        body = await run_in_threadpool(request.app.state.metrics.exposition)  # may ask the store
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(
        METRICS_PATH,
        scrape,
        methods=["GET"],
        dependencies=list(dependencies),
        tags=["monitoring"],
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            **error_responses(401, 403),
        },
    )
    return metrics


class JobGauges:
    """A collector of a job service's queue, counted in the store at each scrape: the jobs of
    ``kind`` in each of ``COUNTED_STATUSES`` (two indexed counts), and how many scrapes failed
    to count them (the store down: the gauge is left out, the scrape still answers)."""

    def __init__(self, service: str, kind: str, store_of: Callable[[], Any]) -> None:
        self.service = service
        self.kind = kind
        self.store_of = store_of  # the app's JobStore, None before the lifespan opened it
        self.errors = 0
        self.failing = False
        self._lock = threading.Lock()

    def _counts(self) -> dict[str, int] | None:
        store = self.store_of()
        if store is None:
            return None
        try:
            return {
                status: store.col.count_documents({"kind": self.kind, "status": status})
                for status in COUNTED_STATUSES
            }
        except Exception as exc:  # the store is down: the scrape answers without the gauge
            with self._lock:
                self.errors += 1
                first, self.failing = not self.failing, True
            if first:  # once per outage, not at every scrape
                log.warning("%s metrics: the job store cannot count jobs (%s: %s)",
                            self.service, type(exc).__name__, exc)  # fmt: skip
            return None

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        if counts is not None:
            with self._lock:
                if self.failing:
                    log.info("%s metrics: the job store counts jobs again", self.service)
                self.failing = False
            jobs = GaugeMetricFamily(
                "mlpipeline_jobs",
                "Jobs of this service in the store by status, counted at the scrape.",
                labels=["service", "status"],
            )
            for status, count in counts.items():
                jobs.add_metric([self.service, status], count)
            yield jobs
        errors = CounterMetricFamily(
            "mlpipeline_metrics_store_errors",
            "Scrapes whose count of jobs failed because the store did not answer.",
            labels=["service"],
        )
        errors.add_metric([self.service], self.errors)
        yield errors


class AttemptOutcomes:
    """``mlpipeline_job_attempts_total{outcome}``: attempts of this process's ``JobRunner`` that
    ended as recorded (``ATTEMPT_OUTCOMES``); ``ended`` is its ``JobRunner.ended`` listener."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.service = metrics.service
        self.counter = Counter(
            "mlpipeline_job_attempts",
            "Job attempts run by this process, by the outcome stored: succeeded, failed, or "
            "requeued after an outage of a dependency.",
            ["service", "outcome"],
            registry=metrics.registry,
        )
        for outcome in ATTEMPT_OUTCOMES:  # 0 from the start: rate() and alerts see the series
            self.counter.labels(self.service, outcome)

    def ended(self, outcome: str) -> None:
        self.counter.labels(self.service, outcome).inc()


def add_job_metrics(app: FastAPI, kind: str) -> AttemptOutcomes:
    """Register a job service's metrics in ``app.state.metrics``; the lifespan appends the
    returned ``AttemptOutcomes.ended`` to its runner's ``ended`` listeners."""
    metrics: ServiceMetrics = app.state.metrics
    store_of = lambda: getattr(app.state, "store", None)  # noqa: E731 - set by the lifespan
    metrics.registry.register(JobGauges(metrics.service, kind, store_of))
    return AttemptOutcomes(metrics)
