"""The Streamlit dashboard: `streamlit run dashboard/dashboard.py` (port 8501 in `make demo`)."""

import sys
from pathlib import Path

# Streamlit puts this file's folder on sys.path; the project root must come first so that
# `dashboard` is the package, not this file.
ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)


from dashboard.page import render_page  # noqa: E402

render_page()
