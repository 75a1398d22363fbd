"""Code that more than one service needs: settings, errors, MLflow access, models, files."""

from common.errors import InvalidInput, NotFound, PipelineError, ServiceUnavailable
from common.fileio import (
    atomic_replace_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from common.jobs import JobRunner
from common.models import MODEL_NAMES, ImageClassifier, build_model
from common.preprocessing import Preprocessing
from common.service import (
    JobOut,
    JobService,
    WaitSeconds,
    create_job_app,
    get_app_settings,
    get_job_service,
    require_token,
)
from common.settings import Settings, get_settings
from common.store import JobStore, SelectionStore, get_database
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
    "JobOut",
    "JobRunner",
    "JobService",
    "JobStore",
    "NotFound",
    "PipelineError",
    "Preprocessing",
    "SelectionStore",
    "ServiceUnavailable",
    "Settings",
    "WaitSeconds",
    "atomic_replace_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "build_model",
    "check_tracking",
    "create_job_app",
    "get_app_settings",
    "get_client",
    "get_database",
    "get_job_service",
    "get_run",
    "get_settings",
    "load_model",
    "load_preprocessing",
    "require_token",
]
