"""Runs the pipeline's services as local processes (`make demo`)."""

from launcher.services import (
    DASHBOARD,
    EVALUATOR,
    EXPLAINER,
    MLFLOW,
    PREDICTOR,
    SERVICES,
    TRAINER,
    UVICORN_HTTP,
    Service,
)

__all__ = [
    "DASHBOARD",
    "EVALUATOR",
    "EXPLAINER",
    "MLFLOW",
    "PREDICTOR",
    "SERVICES",
    "TRAINER",
    "UVICORN_HTTP",
    "Service",
]
