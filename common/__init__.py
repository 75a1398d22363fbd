"""What every package needs and nothing heavy: settings, user-facing errors, atomic file writes
(and the removal of a killed writer's leftovers: ``remove_partial_writes``; scratch folders a
killed process leaves, removed by the next one: ``scratch_dir``, ``make_scratch``), one log
format (``configure_logging``: UTC times, level, logger), the one confinement rule for paths
from requests and runs (``confine``), the one redaction of credentials in URIs shown to users
(``redact_uri``) and of file names that are not UTF-8 (``printable``), the CPUs a process may use
under a container's quota (``available_cores``), a package's installed version
(``installed_version``), the names of the evaluator's metrics in MLflow with which way each
is better (``metric_keys``), the one writing of a figure for a person (``figure``: the
dashboard's and the evaluator's plots'), the one millisecond UTC "now" of records and tags
(``utcnow``), the keys' fingerprints (``fingerprint``), and child processes that end with the
process that started them, ``kill -9`` included (``spawn_tethered``, ``set_parent_death_signal``).

Job handling lives in ``jobs``, MLflow access, models and the artifact contract in ``runs``.
"""

from common import metric_keys
from common.clock import utcnow
from common.colours import CATEGORICAL, contrast_ratio, curve_style, hex_rgb, png_bytes
from common.cores import available_cores
from common.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PipelineError,
    ServiceUnavailable,
    StartupError,
    TooManyRequests,
)
from common.figures import figure
from common.fileio import (
    DISK_FULL,
    atomic_replace_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    free_space,
    remove_partial_writes,
)
from common.heap import end_download_threads, freeze_startup_heap
from common.keys import fingerprint, is_fingerprint
from common.logs import configure_logging
from common.paths import (
    MAX_NAME_BYTES,
    MAX_PATH_CHARS,
    check_path_chars,
    check_path_text,
    confine,
)
from common.redact import printable, redact_uri
from common.scratch import STALE_AFTER_S, make_scratch, scratch_dir, umask_mode
from common.settings import Settings, get_settings
from common.tether import set_parent_death_signal, spawn_tethered
from common.versions import installed_version

__all__ = [
    "CATEGORICAL",
    "DISK_FULL",
    "MAX_NAME_BYTES",
    "MAX_PATH_CHARS",
    "STALE_AFTER_S",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PipelineError",
    "ServiceUnavailable",
    "Settings",
    "StartupError",
    "TooManyRequests",
    "atomic_replace_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "available_cores",
    "check_path_chars",
    "check_path_text",
    "configure_logging",
    "confine",
    "contrast_ratio",
    "curve_style",
    "end_download_threads",
    "figure",
    "fingerprint",
    "free_space",
    "freeze_startup_heap",
    "get_settings",
    "hex_rgb",
    "installed_version",
    "is_fingerprint",
    "make_scratch",
    "metric_keys",
    "png_bytes",
    "printable",
    "redact_uri",
    "remove_partial_writes",
    "scratch_dir",
    "set_parent_death_signal",
    "spawn_tethered",
    "umask_mode",
    "utcnow",
]
