"""Evaluator (stage 4): metrics with confidence intervals for a trained run, logged back to MLflow.

Other packages use only what is exported here; the HTTP API lives in ``evaluator.app``.
"""

from evaluator.evaluate import ARTIFACT_DIR, EVALUATED_TAG, evaluate_run
from evaluator.metrics import compute_metrics

__all__ = ["ARTIFACT_DIR", "EVALUATED_TAG", "compute_metrics", "evaluate_run"]
