"""The command lines the dashboard shows for what a run lacks (``python -m evaluator --run-id``,
``python -m explainer --run-id``), written so that they work as pasted into a shell on the
dashboard's machine, from the project's folder (where ``-m evaluator`` finds the package).

Such a command reads its settings from the environment as every service does
(``common.Settings``): the dashboard's tracking server and ``DATA_DIR`` are put before it
whenever they are not the settings' defaults, else the command would look for the run on
``http://127.0.0.1:5000`` and for the run's data (recorded relative to ``DATA_DIR``) under
``data/``. The interpreter is the one README's commands name: ``.venv/bin/python`` when the
dashboard runs under the project's own virtualenv (``make demo``), else ``python`` (the Docker
images put their virtualenv first on ``PATH``; any other setup runs it with its environment
activated). The tracking URI is shown without its credentials (``common.redact_uri``): a page
shows no secret; such a server needs ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` set where the
command runs, as the dashboard does.
"""

import shlex
import sys
from pathlib import Path

from common import Settings, redact_uri
from dashboard.markup import code

ROOT = Path(__file__).resolve().parents[1]  # the project's folder, where the commands run
VENV_PYTHON = ".venv/bin/python"  # as README.md writes the command lines
DEFAULT_URI = Settings.model_fields["mlflow_tracking_uri"].default
DEFAULT_DATA_DIR = Settings.model_fields["data_dir"].default


def interpreter(prefix: str | None = None) -> str:
    """``.venv/bin/python`` when the dashboard runs in the project's ``.venv`` (``prefix``:
    ``sys.prefix``), else ``python``."""
    try:
        own = Path(prefix or sys.prefix).resolve() == (ROOT / ".venv").resolve()
    except OSError:
        own = False
    return VENV_PYTHON if own else "python"


def environment(settings: Settings) -> list[str]:
    """``NAME=value`` words (quoted for a POSIX shell) for the settings that differ from their
    defaults: the tracking URI, and ``DATA_DIR`` as an absolute path (the dashboard's relative
    one is of its own working directory, not of the project's folder the command runs in)."""
    words = []
    if settings.mlflow_tracking_uri != DEFAULT_URI:
        words.append(f"MLFLOW_TRACKING_URI={shlex.quote(redact_uri(settings.mlflow_tracking_uri))}")
    data = Path(settings.data_dir).expanduser().resolve()
    if data != (ROOT / DEFAULT_DATA_DIR).resolve():
        words.append(f"DATA_DIR={shlex.quote(str(data))}")
    return words


def cli_command(settings: Settings, service: str, run_id: str, *args: str) -> str:
    """The shell command that runs ``python -m <service> --run-id <run_id> [args]`` against the
    dashboard's server and data (``settings``: the session's, ``context.Context.settings``)."""
    command = [interpreter(), "-m", service, "--run-id", run_id, *args]
    return " ".join([*environment(settings), *map(shlex.quote, command)])


def cli_code(settings: Settings, service: str, run_id: str, *args: str) -> str:
    """``cli_command`` as a Markdown code span, to show in Streamlit."""
    return code(cli_command(settings, service, run_id, *args))
