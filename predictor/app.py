"""The predictor's HTTP API (port 5007): ``POST /predict``, ``GET /health``, ``GET /ready``.

The Bearer token rule is the other APIs': with ``PIPELINE_API_TOKEN`` set, all but ``/health``.

Run with ``uvicorn predictor.app:app --port 5007``. It serves ``models:/<MODEL_NAME>@<MODEL_ALIAS>``
and follows the alias (``predictor.core``); this module only maps HTTP onto the core.
"""

import logging
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from common import PipelineError, Settings, freeze_startup_heap, get_settings
from jobs import BodyLimit, require_token
from predictor.core import MAX_FILES, ModelHolder, Served, predict
from runs import MAX_PIXELS

router = APIRouter()


class ImagePrediction(BaseModel):
    file: str = Field(description="the uploaded file name")
    predicted_class: str
    probabilities: dict[str, float] = Field(description="class name → probability")


class PredictOut(BaseModel):
    """Predictions, and which registered model version computed them."""

    model_name: str
    alias: str
    version: str
    run_id: str | None
    predictions: list[ImagePrediction]


class ReadyOut(BaseModel):
    status: str = "ready"
    model_name: str
    alias: str
    version: str
    run_id: str | None
    class_names: list[str]
    loaded_at: datetime


def get_holder(request: Request) -> ModelHolder:
    """Dependency: the app's ``ModelHolder``."""
    return request.app.state.holder


def get_served(holder: Annotated[ModelHolder, Depends(get_holder)]) -> Served:
    """Dependency: the model to answer with (503 naming why when none is loaded)."""
    return holder.serving()


_ERRORS = {
    401: {"description": "PIPELINE_API_TOKEN is set and the Bearer token is missing or wrong"},
    413: {"description": "the files of one request exceed PREDICT_MAX_BODY_BYTES"},
    422: {
        "description": "no file, too many files, or a file that is not a PNG/JPEG/DICOM image "
        f"or declares more than {MAX_PIXELS // 1_000_000} megapixels"
    },
    503: {"description": "no model is loaded yet (the detail says why)"},
}


@router.post(
    "/predict", response_model=PredictOut, responses=_ERRORS, dependencies=[Depends(require_token)]
)
def predict_files(
    served: Annotated[Served, Depends(get_served)],
    files: Annotated[list[UploadFile], File(description="PNG, JPEG or DICOM images")],
) -> PredictOut:
    """Class probabilities and the predicted class of each uploaded image."""
    uploads = [(f.filename or f"file {i}", f.file.read()) for i, f in enumerate(files)]
    return PredictOut.model_validate(predict(served, uploads))


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={401: _ERRORS[401], 503: _ERRORS[503]},
    dependencies=[Depends(require_token)],
)
def ready(served: Annotated[Served, Depends(get_served)]) -> ReadyOut:
    """200 with the served version once a model is loaded; 503 naming why until then."""
    return ReadyOut(
        model_name=served.model_name,
        alias=served.alias,
        version=served.version,
        run_id=served.run_id,
        class_names=served.class_names,
        loaded_at=served.loaded_at,
    )


@router.get("/health")
def health() -> dict[str, str]:
    """The process is serving (no token needed)."""
    return {"status": "ok"}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The predictor app for ``settings`` (default: from the environment)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        logging.getLogger("predictor").setLevel(logging.INFO)
        if not logging.getLogger("predictor").handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s predictor %(message)s")
            )
            logging.getLogger("predictor").addHandler(handler)
        holder = ModelHolder(app.state.settings)
        app.state.holder = holder
        holder.start()  # the first load happens in the poller: /health answers at once
        freeze_startup_heap()  # no full GC pass over torch's and MLflow's objects per request
        try:
            yield
        finally:
            holder.stop()

    app = FastAPI(title="Predictor", lifespan=lifespan)
    app.state.settings = settings or get_settings()
    app.include_router(router)

    async def pipeline_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": str(exc)})

    app.add_exception_handler(PipelineError, pipeline_error)
    limit = app.state.settings.predict_max_body_bytes
    hint = f"send fewer or smaller images per request (at most {MAX_FILES} files)"
    app.add_middleware(BodyLimit, max_bytes=limit, setting="PREDICT_MAX_BODY_BYTES", hint=hint)
    return app


app = create_app()
