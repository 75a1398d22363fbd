"""The predictor service (``uvicorn predictor.app:app``, port 5007): serves the chosen model.

``predictor.core`` follows ``models:/<MODEL_NAME>@<MODEL_ALIAS>`` and predicts; ``predictor.app``
is the HTTP API on top.
"""

from predictor.core import (
    MAX_FILES,
    ModelHolder,
    Served,
    decode_files,
    predict,
)

__all__ = [
    "MAX_FILES",
    "ModelHolder",
    "Served",
    "decode_files",
    "predict",
]
