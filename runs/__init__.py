"""What the pipeline knows about an MLflow run: access, models, preprocessing, run checks.

- Tracking: ``check_tracking``, ``get_client``, ``get_run``, ``load_model``,
  ``load_preprocessing`` raise ``common`` errors with a message for the user.
- Models: ``build_model`` and ``MODEL_NAMES`` (the classes the trainer pickles into runs).
- ``Preprocessing``: how a consumer turns images into the model's input.
- Checks: ``check_run``, ``check_model``, ``run_data_dir``, ``resolve_data_dir`` and
  ``load_test_split``, shared by the evaluator and explainer.
- The artifact contract (``runs.contract``): where each artifact lives in a run.
"""

from runs import contract, inference
from runs.checks import (
    check_model,
    check_run,
    load_test_split,
    resolve_data_dir,
    run_data_dir,
)
from runs.models import MODEL_NAMES, ImageClassifier, build_model
from runs.preprocessing import Preprocessing
from runs.tracking import (
    MODEL_NAME,
    check_tracking,
    get_client,
    get_run,
    load_model,
    load_preprocessing,
)

__all__ = [
    "MODEL_NAME",
    "MODEL_NAMES",
    "ImageClassifier",
    "Preprocessing",
    "build_model",
    "check_model",
    "check_run",
    "check_tracking",
    "contract",
    "get_client",
    "get_run",
    "inference",
    "load_model",
    "load_preprocessing",
    "load_test_split",
    "resolve_data_dir",
    "run_data_dir",
]
