"""The Streamlit dashboard (``streamlit run dashboard/dashboard.py``) and its reusable parts.

Other packages may use the model-selection logic and the model card without Streamlit.
"""

from dashboard.model_card import build_model_card, evaluation_table, serving_instructions
from dashboard.selection import (
    RUN_ID_FILE,
    Selection,
    download_run,
    select_run,
    select_top,
)

__all__ = [
    "RUN_ID_FILE",
    "Selection",
    "build_model_card",
    "download_run",
    "evaluation_table",
    "select_run",
    "select_top",
    "serving_instructions",
]
