"""The predictor's own metrics on ``/metrics``, beside every service's (``service.ServiceMetrics``:
requests by route and status, their durations).

- ``mlpipeline_model_loaded``: 1 while a model version is loaded and answers, else 0 (every
  ``/predict`` gets 503 meanwhile).
- ``mlpipeline_served_model_version{model, alias, problem}``: the version that answers, read at
  the scrape; ``problem="true"`` while the alias no longer names it (stale), the last look at
  the alias failed, or its run is deleted (``/ready``'s ``problem`` says which). Left out while
  none is loaded.
- ``mlpipeline_predictions_total`` and ``mlpipeline_predicted_images_total{model, version}``:
  ``/predict`` requests answered with predictions, and the images they held.
- ``mlpipeline_out_of_distribution_images_total{model, version}``: of those images, the ones the
  model's out-of-distribution check flagged: a share rising above its ``expected_rate`` says
  clients send images unlike the training data (another device, site or modality).
"""

from collections.abc import Callable, Iterator

from fastapi import FastAPI
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from predictor.core import ModelHolder, Served
from service import ServiceMetrics


class ServedModelGauges:
    """A collector of the served version, read from the app's ``ModelHolder`` at each scrape
    (one attribute; nothing asks MLflow)."""

    def __init__(self, service: str, holder_of: Callable[[], ModelHolder | None]) -> None:
        self.service = service
        self.holder_of = holder_of  # None before the lifespan made the holder

    def collect(self) -> Iterator[Metric]:
        holder = self.holder_of()
        served = holder.current if holder is not None else None
        loaded = GaugeMetricFamily(
            "mlpipeline_model_loaded",
            "1 while a model version is loaded and answers /predict, else 0.",
            labels=["service"],
        )
        loaded.add_metric([self.service], 0 if served is None else 1)
        yield loaded
        if served is None:
            return
        version = GaugeMetricFamily(
            "mlpipeline_served_model_version",
            "The registered model version that answers /predict; problem=true while it is "
            "stale, the alias could not be looked up, or its run is deleted.",
            labels=["service", "model", "alias", "problem"],
        )
        problem = served.stale or bool(served.problem) or bool(served.run_problem)
        try:
            number = float(served.version)
        except ValueError:  # MLflow's versions are numbers; anything else is shown as NaN
            number = float("nan")
        labels = [self.service, served.model_name, served.alias, str(problem).lower()]
        version.add_metric(labels, number)
        yield version


class PredictorMetrics:
    """The predictor's counters; ``predicted`` is called by ``/predict`` once it has answers."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.service = metrics.service
        labels = ["service", "model", "version"]
        self.predictions = Counter(
            "mlpipeline_predictions",
            "/predict requests answered with predictions, by the model version that answered.",
            labels,
            registry=metrics.registry,
        )
        self.images = Counter(
            "mlpipeline_predicted_images",
            "Images classified, by the model version that answered.",
            labels,
            registry=metrics.registry,
        )
        self.unlike = Counter(
            "mlpipeline_out_of_distribution_images",
            "Images classified that the model's out-of-distribution check flagged (unlike its "
            "training images), by the model version that answered.",
            labels,
            registry=metrics.registry,
        )

    def predicted(self, served: Served, images: int, unlike: int = 0) -> None:
        """Count one answered request of ``images`` images, ``unlike`` of them flagged out of
        distribution."""
        labels = (self.service, served.model_name, served.version)
        self.predictions.labels(*labels).inc()
        self.images.labels(*labels).inc(images)
        self.unlike.labels(*labels).inc(unlike)


def add_predictor_metrics(app: FastAPI) -> PredictorMetrics:
    """Register the predictor's metrics in ``app.state.metrics`` (made by ``service_app``)."""
    metrics: ServiceMetrics = app.state.metrics
    holder_of = lambda: getattr(app.state, "holder", None)  # noqa: E731 - set by the lifespan
    metrics.registry.register(ServedModelGauges(metrics.service, holder_of))
    return PredictorMetrics(metrics)
