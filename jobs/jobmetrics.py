"""A job service's metrics, beside every service's (``service.metrics``) in its
``ServiceMetrics`` registry (``add_job_metrics``):

- ``mlpipeline_jobs{status}``, its ``queued`` and ``running`` jobs counted in the store at each
  scrape; ``mlpipeline_job_attempts_total{outcome}``, attempts of this process that ended
  ``succeeded``, ``failed`` or ``requeued`` (after an outage);
  ``mlpipeline_metrics_store_errors_total``, scrapes that could not count the jobs (the store is
  down: ``mlpipeline_jobs`` is left out of that scrape, and ``/metrics`` still answers).
"""

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from service import ServiceMetrics

log = logging.getLogger(__name__)

COUNTED_STATUSES = ("queued", "running")
ATTEMPT_OUTCOMES = ("succeeded", "failed", "requeued")


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
