"""Code that more than one service needs: settings, errors, MLflow access, models, the store.

Errors and file helpers load at once; everything else loads on first use, so that a light
command (``python -m dataloader``) does not pay for importing torch, MLflow and FastAPI.
"""

import importlib
from typing import TYPE_CHECKING

from common.errors import InvalidInput, NotFound, PipelineError, ServiceUnavailable
from common.fileio import (
    atomic_replace_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)

_LAZY = {
    "common.jobs": ("JobRunner",),
    "common.models": ("MODEL_NAMES", "ImageClassifier", "build_model"),
    "common.preprocessing": ("Preprocessing",),
    "common.runs": (
        "check_model",
        "check_run",
        "load_test_split",
        "resolve_data_dir",
        "run_data_dir",
    ),
    "common.service": (
        "JobOut",
        "JobService",
        "RunId",
        "WaitSeconds",
        "create_job_app",
        "get_app_settings",
        "get_job_service",
        "require_token",
    ),
    "common.settings": ("Settings", "get_settings"),
    "common.store": ("JobStore", "SelectionStore", "get_database"),
    "common.tracking": (
        "MODEL_NAME",
        "check_tracking",
        "get_client",
        "get_run",
        "load_model",
        "load_preprocessing",
    ),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from common.jobs import JobRunner
    from common.models import MODEL_NAMES, ImageClassifier, build_model
    from common.preprocessing import Preprocessing
    from common.runs import (
        check_model,
        check_run,
        load_test_split,
        resolve_data_dir,
        run_data_dir,
    )
    from common.service import (
        JobOut,
        JobService,
        RunId,
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


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'common' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


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
    "RunId",
    "SelectionStore",
    "ServiceUnavailable",
    "Settings",
    "WaitSeconds",
    "atomic_replace_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "build_model",
    "check_model",
    "check_run",
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
    "load_test_split",
    "require_token",
    "resolve_data_dir",
    "run_data_dir",
]
