"""The predictor's HTTP API (port 5007): ``POST /predict``, ``GET /health``, ``GET /ready``,
``GET /metrics`` (Prometheus: ``service.metrics`` and ``predictor.metrics``).

The guards are every service's (``service``): with ``PIPELINE_API_TOKEN`` set, the Bearer token on
all but ``/health`` (and ``/docs``, ``/redoc``, ``/openapi.json`` unless ``API_DOCS_PUBLIC``), and
no start with a weak token; the docs pages are served from installed files; a 422 never echoes a
large input.

Run with ``uvicorn predictor.app:app --http service.protocol:BoundedHead --port 5007`` (the command
of ``launcher.PREDICTOR``; the protocol bounds request heads). It serves
``models:/<MODEL_NAME>@<MODEL_ALIAS>`` and follows the alias (``predictor.core``); this module
only maps HTTP onto the core and ``predictor.answers`` (the answers, built as their response
models), with the predictor's own error answers (``predictor.errors``) and the headers and log
line that trace each ``/predict`` (``predictor.tracing``).
"""

import threading
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError

from common import Settings, freeze_startup_heap, get_settings
from predictor.answers import ImagePrediction, PredictOut, ReadyOut, predict, readiness
from predictor.core import ModelHolder, Served
from predictor.errors import (
    NoModelLoaded,
    body_error,
    form_error,
    how_to_send,
    no_model,
    served_or_503,
)
from predictor.inputs import MAX_FILES
from predictor.loading import warn_of_signing_secrets
from predictor.metrics import add_predictor_metrics
from predictor.tracing import (
    MODEL_NAME_HEADER,
    MODEL_VERSION_HEADER,
    REQUEST_ID_HEADER,
    PredictTrace,
)
from runs import MAX_PIXELS
from service import ErrorOut, error_responses, require_token, service_app

# the answers' models, defined in predictor.answers, are this module's too (the routes' schema)
__all__ = ["ImagePrediction", "PredictOut", "ReadyOut", "app", "create_app", "router"]

router = APIRouter()


async def get_holder(request: Request) -> ModelHolder:
    """Dependency: the app's ``ModelHolder`` (async, as every dependency of /ready and /health:
    they must answer on the event loop while queued predictions hold the worker threads)."""
    return request.app.state.holder


async def get_served(holder: Annotated[ModelHolder, Depends(get_holder)]) -> Served:
    """Dependency: the model to answer with (503 naming why when none is loaded, with
    ``Retry-After``; reads one attribute, no lock)."""
    return served_or_503(holder)


_ERRORS = error_responses(
    401,
    403,
    408,
    413,
    422,
    503,
    s413="the files of one request exceed PREDICT_MAX_BODY_BYTES",
    s422="a multipart form without a part named `files`, or with one that is text, not a file; "
    "no file, too many files, or a file that is not a PNG/JPEG/DICOM image or declares more than "
    f"{MAX_PIXELS // 1_000_000} megapixels",
    s503="no model is loaded (no model is chosen yet, or the chosen one cannot be served: the "
    "detail says why), or the uploads in progress fill PREDICT_MAX_BODY_BUFFER_BYTES; retry "
    "after Retry-After seconds",
)
_TRACE = {
    REQUEST_ID_HEADER: "the request's X-Request-ID (1-128 characters of letters, digits and "
    "`._:/+=@-`), else a generated one",
    MODEL_NAME_HEADER: "the registered model that answered (not on a 401)",
    MODEL_VERSION_HEADER: "its version that answered, `none` while none is loaded (not on a 401)",
}
_TRACE_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}} for name, text in _TRACE.items()
}
_NOT_A_FORM = (
    f"not a multipart/form-data body: {how_to_send(False)} (with -H 'Authorization: Bearer "
    "<token>' where the service has PIPELINE_API_TOKEN, as its answer's example shows then)"
)
_PREDICT_ANSWERS = {
    status: {**answer, "headers": _TRACE_HEADERS}
    for status, answer in {
        200: {},
        415: {"model": ErrorOut, "description": _NOT_A_FORM},
        **_ERRORS,
    }.items()
}


@router.post(
    "/predict",
    response_model=PredictOut,
    responses=_PREDICT_ANSWERS,
    dependencies=[Depends(require_token)],
)
def predict_files(
    request: Request,
    holder: Annotated[ModelHolder, Depends(get_holder)],
    files: Annotated[list[UploadFile], File(description="PNG, JPEG or DICOM images")],
) -> PredictOut:
    """Class probabilities and the predicted class of each uploaded image.

    Every answer names the model version that answered in ``X-Model-Name`` and
    ``X-Model-Version``, and the request in ``X-Request-ID`` (``predictor.tracing``).
    """
    request.state.images = len(files)
    # taken here, not as a dependency: a body of the wrong shape is answered first (415/422)
    request.state.served = served = served_or_503(holder)
    # At most PREDICT_CONCURRENCY requests hold decoded images at once: a few kilobytes of PNG
    # can decode to hundreds of megabytes, and the thread pool would otherwise run 40 at a time.
    with request.app.state.slots:
        uploads = [(f.filename or f"file {i}", f.file.read()) for i, f in enumerate(files, 1)]
        answer = predict(served, uploads)
    unlike = sum(bool(p.out_of_distribution) for p in answer.predictions)
    request.app.state.predictor_metrics.predicted(served, len(uploads), unlike)
    return answer


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={401: _ERRORS[401], 503: _ERRORS[503]},
    dependencies=[Depends(require_token)],
)
async def ready(served: Annotated[Served, Depends(get_served)]) -> ReadyOut:
    """200 with the served version once a model is loaded; 503 naming why until then.

    A stale model (the alias no longer names it) is still 200, with ``status`` ``stale`` and the
    ``problem``: readiness means "send this pod traffic", and the service keeps answering with
    the last good version. Every replica sees the same alias, so a 503 would take them all out
    of the Kubernetes Service at once and turn a registry mistake into an outage of the whole
    hand-off; clients see ``stale`` and ``problem`` in every ``/predict`` answer instead.
    """
    return readiness(served)


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is serving (no token needed; ``HEAD`` too, for load balancers that probe with
    it; answered by ``service.intake.HealthFastPath``, this route documents it)."""
    return {"status": "ok"}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The predictor app for ``settings`` (default: from the environment).

    Raises:
        InsecureToken: ``PIPELINE_API_TOKEN`` is set but empty, a placeholder or short.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        holder = ModelHolder(app.state.settings)
        app.state.holder = holder
        holder.start()  # the first load happens in the poller: /health answers at once
        freeze_startup_heap()  # no full GC pass over torch's and MLflow's objects per request
        try:
            yield
        finally:
            holder.stop()

    settings = settings or get_settings()
    warn_of_signing_secrets(settings)
    limit = {
        "max_bytes": settings.predict_max_body_bytes,
        "setting": "PREDICT_MAX_BODY_BYTES",
        "budget_bytes": settings.predict_max_body_buffer_bytes,
        "budget_setting": "PREDICT_MAX_BODY_BUFFER_BYTES",
        "hint": f"send fewer or smaller images per request (at most {MAX_FILES} files)",
    }
    app = service_app("Predictor", lifespan, settings, form_error, limit)
    app.add_exception_handler(RequestValidationError, body_error)
    app.add_exception_handler(NoModelLoaded, no_model)
    app.add_middleware(PredictTrace)  # outermost: its headers are on every answer, 401 too
    app.state.slots = threading.BoundedSemaphore(settings.predict_concurrency)
    app.state.predictor_metrics = add_predictor_metrics(app)  # and /metrics (service_app)
    app.include_router(router)
    return app


app = create_app()
