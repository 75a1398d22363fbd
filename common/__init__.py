"""What every package needs and nothing heavy: settings, user-facing errors, atomic file writes.

Job handling lives in ``jobs``, MLflow access, models and the artifact contract in ``runs``.
"""

from common.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PipelineError,
    ServiceUnavailable,
    TooManyRequests,
)
from common.fileio import (
    atomic_replace_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from common.settings import Settings, get_settings

__all__ = [
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PipelineError",
    "ServiceUnavailable",
    "Settings",
    "TooManyRequests",
    "atomic_replace_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "get_settings",
]
