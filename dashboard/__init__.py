"""The Streamlit dashboard (``streamlit run dashboard/dashboard.py``) and its reusable parts.

Other packages may use downloads and the model card without Streamlit.
"""

from dashboard.card_tables import evaluation_table
from dashboard.model_card import build_model_card, serving_instructions
from dashboard.ranking import download_top
from dashboard.selection import Download, download_model, download_run

__all__ = [
    "Download",
    "build_model_card",
    "download_model",
    "download_run",
    "download_top",
    "evaluation_table",
    "serving_instructions",
]

# Choosing a model for deployment is ``dashboard.choose`` (``python -m dashboard.choose``); it is
# not imported here so that running it as a module does not import it twice.
