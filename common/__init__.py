"""Code that more than one service needs: settings, errors, MLflow access, models, files."""

from common.errors import InvalidInput, NotFound, PipelineError, ServiceUnavailable
from common.fileio import (
    atomic_replace_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from common.models import MODEL_NAMES, ImageClassifier, build_model
from common.preprocessing import Preprocessing
from common.settings import Settings, get_settings
from common.tracking import (
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
    "InvalidInput",
    "NotFound",
    "PipelineError",
    "Preprocessing",
    "ServiceUnavailable",
    "Settings",
    "atomic_replace_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "build_model",
    "check_tracking",
    "get_client",
    "get_run",
    "get_settings",
    "load_model",
    "load_preprocessing",
]
