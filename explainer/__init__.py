"""Explainer service (stage 5): SHAP, Integrated Gradients and Grad-CAM with a faithfulness score.

Other packages use only what is exported here; the HTTP API lives in ``explainer.app``.
"""

from explainer.attributions import METHODS
from explainer.explain import (
    DEFAULT_N_SAMPLES,
    MAX_N_SAMPLES,
    Explanation,
    check_request,
    explain_images,
    explain_run,
)

__all__ = [
    "DEFAULT_N_SAMPLES",
    "MAX_N_SAMPLES",
    "METHODS",
    "Explanation",
    "check_request",
    "explain_images",
    "explain_run",
]
