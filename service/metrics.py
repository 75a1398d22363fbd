"""Prometheus metrics of every service: ``GET /metrics`` in the text format Prometheus scrapes.

``service.shell.service_app`` gives each app a ``ServiceMetrics`` (``app.state.metrics``) with a
``CollectorRegistry`` of its own (tests build many apps in one process; the global registry
would refuse the second app's metrics), the ``/metrics`` route, behind the token like every
route but ``/health``, and ``RequestMetrics``, the middleware that counts and times requests.
Every metric is named ``mlpipeline_...`` and labelled ``service`` (``ServiceMetrics.service``).

- ``mlpipeline_http_requests_total{route, method, status}`` and
  ``mlpipeline_http_request_duration_seconds{route}``: every answer but ``/health``'s, refusals
  before routing (401, 413, 408, a full body budget's 503) included. ``route`` is the route's
  template (``/jobs/{job_id}``), never the path sent (a label per job id would grow without
  end), ``unmatched`` for a path no route serves; a method no route could take is ``other``.
- A job service's: ``jobs.jobmetrics`` (``add_job_metrics``).

The predictor adds its own (``predictor.metrics``) to ``ServiceMetrics.registry``.
"""

import re
import time
from collections.abc import Iterable
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
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.answers import error_responses
from service.intake import route_path

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
