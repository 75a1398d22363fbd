"""The predictor service (``uvicorn predictor.app:app``, port 5007): serves the chosen model.

``predictor.core`` follows ``models:/<MODEL_NAME>@<MODEL_ALIAS>``; ``predictor.answers`` predicts
and says which model answered; ``predictor.inputs`` says what one request may hold and decodes it;
``predictor.app`` is the HTTP API on top, with its own error answers (``predictor.errors``) and the
headers and log line naming the request and the version that answered (``predictor.tracing``).
"""

from predictor.answers import predict
from predictor.core import ModelHolder, Served
from predictor.inputs import MAX_FILES, MAX_REQUEST_PIXELS, decode_files

__all__ = [
    "MAX_FILES",
    "MAX_REQUEST_PIXELS",
    "ModelHolder",
    "Served",
    "decode_files",
    "predict",
]
