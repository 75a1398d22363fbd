"""Evaluator (stage 4): metrics with confidence intervals for a trained run, logged back to MLflow.

Other packages use only what is exported here; the HTTP API lives in ``evaluator.app``.
"""

from evaluator.evaluate import evaluate_run
from evaluator.metrics import compute_metrics

__all__ = ["compute_metrics", "evaluate_run"]
