"""The predictor's own error answers, each one ``{"detail": str}`` line saying what to do.

- ``body_error``: a ``POST /predict`` body that is not a multipart form of ``files`` parts: 415
  for another content type (or none), 422 for a form without ``files`` parts or with a text
  ``files`` part; any other route's validation errors get the job APIs' answer.
- ``form_error``: Starlette's 400s for a multipart body: over 1,000 parts is the contract's 422
  for too many files, one that cannot be parsed a 422 saying how to send it.
- ``NoModelLoaded`` (``served_or_503``): the 503 while no model is loaded, worded for an API
  client first, with ``Retry-After`` (``PREDICTOR_POLL_S``, rounded up).
"""

import math
import re

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from common import ServiceUnavailable
from predictor.core import LOOKING_UP, ModelHolder, Served
from predictor.inputs import MAX_FILES
from service import route_error, route_path, validation_error

__all__ = ["NoModelLoaded", "body_error", "form_error", "how_to_send", "served_or_503"]


def how_to_send(token_required: bool) -> str:
    """How a ``POST /predict`` body is sent, ending every answer about its shape; its curl
    example has the ``Authorization`` header (with ``<token>``, never the token) only when the
    service requires one: a client of a service without ``PIPELINE_API_TOKEN`` has none to
    send."""
    header = "-H 'Authorization: Bearer <token>' " if token_required else ""
    return (
        "send multipart/form-data with one or more parts named 'files', each an image file (PNG, "
        f"JPEG or DICOM), such as curl {header}-F files=@scan1.png -F files=@scan2.dcm "
        "<predictor URL>/predict"
    )


def _how(request: Request) -> str:
    """``how_to_send`` for the service that got ``request`` (a token set or not)."""
    return how_to_send(bool(request.app.state.settings.pipeline_api_token))


_STARLETTE_LIMIT = re.compile(r"Too many (files|fields)\. Maximum number of \w+ is (\d+)\.")
_SHOWN_PARTS = 5
"""Names of the parts a form without ``files`` parts has that its 422 repeats."""


def _answer(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def _missing_files(form: FormData | None, how: str) -> str:
    """Why a multipart form without a ``files`` part cannot be predicted, naming its parts."""
    names = list(dict.fromkeys(form.keys())) if form else []
    if not names:
        return f"this form has no parts; {how}"
    if "files" in names:  # a browser form with no file picked sends an empty filename
        return "the 'files' part(s) hold no file (an empty file name: no file was chosen); " + how
    shown = ", ".join(repr(name[:40]) for name in names[:_SHOWN_PARTS])
    more = f" and {len(names) - _SHOWN_PARTS} more" if len(names) > _SHOWN_PARTS else ""
    return f"this form has no part named 'files' (it has: {shown}{more}); {how}"


def _text_parts(errors: list[dict], form: FormData | None, how: str) -> str:
    """Why ``files`` parts sent as text (no filename: ``-F files=hello``) are not images."""
    places = sorted({e["loc"][2] + 1 for e in errors if len(e["loc"]) > 2})
    total = len(form.getlist("files")) if form else max(places, default=0)
    listed = ", ".join(f"#{n}" for n in places[:10]) + (" ..." if len(places) > 10 else "")
    what = "is text, not a file" if len(places) == 1 else "are text, not files"
    return (
        f"part{'s' if len(places) > 1 else ''} 'files' {listed} of {total} {what} (sent without "
        f"a filename; curl sends a file with the @: -F files=@scan.png); {how}"
    )


async def body_error(request: Request, exc: Exception) -> Response:
    """The 415 or 422 of a ``POST /predict`` body without usable ``files`` parts; any other
    validation error: the job APIs' answer (``service.validation_error``)."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if route_path(request.scope) != "/predict" or not all(
        tuple(e["loc"][:2]) == ("body", "files") for e in errors
    ):
        return await validation_error(request, exc)
    content_type = request.headers.get("content-type")
    if (content_type or "").split(";")[0].strip().lower() != "multipart/form-data":
        sent = f"Content-Type {content_type[:80]!r}" if content_type else "no Content-Type"
        return _answer(415, f"this request has {sent}, not multipart/form-data; {_how(request)}")
    form = exc.body if isinstance(exc.body, FormData) else None
    if any(e["type"] == "missing" for e in errors):
        return _answer(422, _missing_files(form, _how(request)))
    return _answer(422, _text_parts(errors, form, _how(request)))


async def form_error(request: Request, exc: Exception) -> Response:
    """Starlette refuses a form of over 1,000 files or fields, or one it cannot parse, with a
    bare 400; the predictor's contract says 422 for too many files, with its own limit."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != 400 or route_path(request.scope) != "/predict":
        return await route_error(request, exc)
    if limit := _STARLETTE_LIMIT.fullmatch(str(exc.detail)):
        what, most = limit[1], int(limit[2])
        return _answer(422, f"this request has more than {most:,} {what}; send at most "
                       f"{MAX_FILES} images per request, each in a part named 'files' (split "
                       "the batch)")  # fmt: skip
    return _answer(422, f"the request body cannot be parsed as multipart/form-data "
                   f"({str(exc.detail)[:200]}); {_how(request)}")  # fmt: skip


class NoModelLoaded(ServiceUnavailable):
    """No model is loaded: 503 with ``Retry-After`` (``no_model``)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self):  # as common.TooManyRequests
        return (type(self), (str(self), self.retry_after))


def served_or_503(holder: ModelHolder) -> Served:
    """The model to answer with; ``NoModelLoaded`` saying why to a client first (no model is
    chosen, or the chosen one cannot be loaded: retry later), then to the operator."""
    try:
        return holder.serving()
    except ServiceUnavailable:
        pass
    retry = math.ceil(holder.settings.predictor_poll_s)
    lead = {
        False: "no model is chosen",
        True: "the chosen model cannot be served",
        None: "no model is loaded yet (the model registry has not said which one is chosen)",
    }[holder.chosen]
    if holder.chosen and holder.problem.startswith(LOOKING_UP):  # its first load is under way
        lead = "the chosen model is still loading"
    raise NoModelLoaded(
        f"{lead}, so nothing can be predicted; retry in {retry} s (Retry-After). For the "
        f"operator: {holder.problem}",
        retry,
    )


async def no_model(request: Request, exc: Exception) -> Response:
    """``NoModelLoaded`` → 503 with its ``Retry-After``."""
    assert isinstance(exc, NoModelLoaded)
    answer = _answer(503, str(exc))
    answer.headers["Retry-After"] = str(exc.retry_after)
    return answer
