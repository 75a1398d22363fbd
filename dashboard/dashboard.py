"""The Streamlit dashboard: `streamlit run dashboard/dashboard.py` (port 8501 in `make demo`)."""

import sys
from pathlib import Path

# Streamlit puts this file's folder on sys.path; the project root must come first so that
# `dashboard` is the package, not this file.
ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)


from common import StartupError, configure_logging, get_settings  # noqa: E402
from dashboard.page import render_page  # noqa: E402

try:  # the dashboard's own lines (not Streamlit's) in the pipeline's format, at LOG_LEVEL
    configure_logging(get_settings().log_level)
except StartupError:  # invalid settings: the page says which (dashboard.page)
    configure_logging()
render_page()
