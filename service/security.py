"""What guards the services' APIs around their routes: the token rule at start-up and validation
answers that never echo huge inputs (the token gate and the body limits, which act before routing,
are ``service.intake``'s; the error answers as OpenAPI lists them, ``service.answers``).

- ``check_token(token)``: refuse to start with an empty, placeholder, short or non-ASCII
  ``PIPELINE_API_TOKEN`` (``InsecureToken``, a ``SystemExit`` whose message is one line).
- ``validation_error``: the 422 handler; each error's ``input`` is cut to ``MAX_ECHO_CHARS``, its
  ``msg`` one line naming the field and what to send where pydantic's words are a programmer's
  (an empty field, malformed JSON, a missing field or body: ``service.wording``);
  ``unparsable_body`` makes FastAPI's 400 for a body that is not UTF-8 a 422 too;
  ``route_error`` (every service's, the predictor's too) answers a path no route takes with a
  404 pointing at the docs, and a method a path does not serve with a 405 naming every method
  it does (in words and in ``Allow``).
- ``PathText``: the type of a path field in a request body; ``JsonInt``, ``JsonBool``: of a
  number or flag (what JSON Schema calls integer and boolean: no text, no true for 1).
- ``add_error_answers(app)``: ``PipelineError`` → its status, anything else → a JSON 500.
"""

import json
import logging
import math
import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BeforeValidator, Field, StrictBool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import (
    InvalidInput,
    PipelineError,
    ServiceUnavailable,
    TooManyRequests,
    check_path_chars,
)
from service.wording import body_model, reworded

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 24
PLACEHOLDER_TOKENS = {"change-me", "changeme", "change_me", "<token>", "token", "secret"}
MAX_ECHO_CHARS = 200
"""Longest input a 422 answer repeats back (longer ones are cut, with their length)."""
MAX_LISTED_ERRORS = 20
"""Validation errors a 422 answer lists; one more item counts the rest (a body of 100,000 wrong
keys would otherwise make an answer ten times its size)."""


class InsecureToken(SystemExit):
    """``PIPELINE_API_TOKEN`` is set but cannot protect anything; ``str()`` is the message.

    A ``SystemExit``, so that ``uvicorn evaluator.app:app`` stops with this one line and exit
    status 1 instead of a traceback.
    """

    def __str__(self) -> str:
        return str(self.code)


def check_token(token: str | None) -> None:
    """Raise ``InsecureToken`` for a token that is set but empty, a placeholder, too short, or
    holds characters other than printable ASCII (no client could send it).

    ``None`` (the variable is unset) is allowed: the API then runs without authentication, which
    is meant for one machine (``make demo``).
    """
    if token is None:
        return
    stripped = token.strip()
    consequence = "it would not protect the API"
    if not stripped:
        problem = "is set but empty"
    elif stripped.lower() in PLACEHOLDER_TOKENS:
        problem = f"is the placeholder {stripped!r}"
    elif len(stripped) < MIN_TOKEN_CHARS:
        problem = f"has {len(stripped)} characters, fewer than {MIN_TOKEN_CHARS}"
    elif not all(" " <= char <= "~" for char in stripped):
        # Header values are bytes that the server reads as Latin-1 and most clients write as
        # UTF-8 (or refuse to send): such a token would match for almost no client.
        problem = (
            "holds characters other than printable ASCII, which HTTP clients send "
            "differently or not at all"
        )
        consequence = "no client could send it and every request would get 401"
    else:
        return
    raise InsecureToken(
        f"PIPELINE_API_TOKEN {problem}, so {consequence}; set it to a random "
        f"secret of at least {MIN_TOKEN_CHARS} characters, for example the output of "
        "python3 -c 'import secrets; print(secrets.token_hex(24))', or unset it to run without "
        "authentication on a single machine."
    )


def _path_chars(value: str) -> str:
    try:
        return check_path_chars(value, "the path")
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


PathText = Annotated[
    str,
    AfterValidator(_path_chars),
    Field(json_schema_extra={"pattern": "^[^\\u0000]*$"}),
]
"""A path in a request body: no NUL byte, valid UTF-8 (``check_path_chars``), checked with the
body. Name lengths and confinement follow where the path is resolved (``common.confine``),
before anything touches the file system."""


def _number(value: Any) -> Any:
    if isinstance(value, bool | str):  # pydantic's lax mode takes true as 1 and "64" as 64
        raise ValueError(
            f"must be a JSON number, not {'true/false' if isinstance(value, bool) else 'text'}"
        )
    return value


JsonInt = Annotated[int, BeforeValidator(_number)]
"""An integer field of a request body: a JSON number (``64``, or ``64.0`` as JSON Schema's
integer allows), never ``true`` or ``"64"``."""
JsonBool = StrictBool
"""A flag of a request body: ``true`` or ``false``, never ``"yes"`` or ``1``."""


def short_input(value: Any) -> Any:
    """``value`` itself when its JSON is short, else the start of it and its length."""
    try:
        text = json.dumps(jsonable_encoder(value))
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) <= MAX_ECHO_CHARS:
        return value
    return f"{text[:MAX_ECHO_CHARS]}… ({len(text)} characters, cut)"


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _not_sent_as_json(request: Request, errors: list[dict]) -> str | None:
    """What to say when a route that takes a JSON object got a body of another content type
    (``curl -d``'s form type, text/plain, none): FastAPI validates the raw text then, and its
    error ("a valid dictionary or object") would not say what to change."""
    content_type = request.headers.get("content-type")
    if _is_json(content_type) or not any(
        tuple(e["loc"]) == ("body",) and e["type"] in ("model_attributes_type", "dict_type")
        for e in errors
    ):
        return None
    sent = f"Content-Type {content_type[:80]!r}" if content_type else "no Content-Type"
    return (
        f"the request body must be a JSON object sent with the header 'Content-Type: "
        f"application/json', and this request has {sent}; with curl: -H 'Content-Type: "
        "application/json' -d '{...}'"
    )


async def validation_error(request: Request, exc: Exception) -> Response:
    """422 listing the first ``MAX_LISTED_ERRORS`` validation errors and how many more there
    are; long inputs are cut, so a 20 MB body is not echoed. A body that is not sent as JSON
    gets one message saying so instead."""
    assert isinstance(exc, RequestValidationError)
    found = exc.errors()
    wrong_type = _not_sent_as_json(request, found)
    if wrong_type is not None:
        return _ascii_json(422, {"detail": wrong_type})
    errors = []
    for error in found[:MAX_LISTED_ERRORS]:
        error = dict(error)
        line = reworded(error, request, exc.body)  # of the input as sent, before it is cut
        if "input" in error:
            error["input"] = short_input(error["input"])
        if "ctx" in error:
            error["ctx"] = {k: short_input(str(v)) for k, v in error["ctx"].items()}
        error.pop("url", None)
        if line is not None:
            error["msg"] = line
        elif error.get("type") == "extra_forbidden" and (fields := _body_fields(request)):
            error["msg"] = f"{error['msg']}; the body's fields are {', '.join(fields)}"
        errors.append(error)
    if len(found) > MAX_LISTED_ERRORS:
        more = len(found) - MAX_LISTED_ERRORS
        errors.append(
            {
                "loc": [],
                "msg": f"{more} more errors like these are not listed; fix the ones above "
                "(see /docs for the request's fields) and send the request again",
                "type": "too_many_errors",
            }
        )
    return _ascii_json(422, {"detail": jsonable_encoder(errors)})


def _body_fields(request: Request) -> list[str]:
    """The fields of the body model of the route ``request`` reached (none where unknown), to
    name them beside an unknown field, which is most often a misspelt or unsupported one."""
    model = body_model(request)
    return list(model.model_fields) if model is not None else []


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as text ("NaN", "inf"): JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _ascii_json(status: int, content: Any) -> Response:
    """Valid JSON (echoed inputs of NaN or Infinity as text) with non-ASCII escaped: an input
    holding a lone surrogate still encodes."""
    body = json.dumps(_finite(content), ensure_ascii=True, default=str, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json")


async def unparsable_body(request: Request, exc: Exception) -> Response:
    """FastAPI answers 400 for a body it cannot parse (not UTF-8, JSON nested deeper than the
    parser's recursion limit, an integer over Python's 4300 digits: it does not say which);
    make it the API's 422."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        return _ascii_json(
            422,
            {
                "detail": "the request body cannot be parsed as JSON: it is not valid UTF-8, "
                "nests arrays or objects too deeply, or holds a number of more than 4300 digits "
                f"({exc.detail}); send a flat JSON object encoded in UTF-8, as the examples in "
                "/docs show."
            },
        )
    return await route_error(request, exc)


async def route_error(request: Request, exc: Exception) -> Response:
    """The framework's 404 of a path no route takes and 405 of a method its routes do not serve,
    in words that say what to do (the docs, the methods served); any other HTTP error as
    FastAPI answers it. Every service's last word on the framework's own errors."""
    assert isinstance(exc, StarletteHTTPException)
    path = request.scope["path"][:200]
    if exc.status_code == 405:
        # Starlette lists only the first matching route's methods in Allow; a path served by
        # several routes (GET and DELETE /jobs/{id}) must list them all.
        allowed = _allowed_methods(request)
        if allowed:
            headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
            detail = exc.detail
            if detail == "Method Not Allowed":  # Starlette's own words: say which methods
                detail = f"{request.method[:10]} is not served at {path}: use "
                detail += " or ".join(allowed)
            exc = StarletteHTTPException(405, detail, headers=headers)
    elif exc.status_code == 404 and exc.detail == "Not Found" and not _routed(request):
        exc = StarletteHTTPException(
            404, f"no route at {path}: this service's routes are listed at /docs", exc.headers
        )
    return await http_exception_handler(request, exc)


def trailing_slash(request: Request, exc: StarletteHTTPException) -> Response | None:
    """The 404 of a path that a route serves without its trailing slash, saying so; None for
    any other answer. (Starlette would redirect there, to a URL built from the Host header the
    client sent: a reflected redirect. The apps have ``redirect_slashes`` off.)"""
    path = request.scope["path"]
    if exc.status_code != 404 or len(path) < 2 or not path.endswith("/"):
        return None
    scope = {**request.scope, "path": path.rstrip("/") or "/"}
    if not any(route.matches(scope)[0] != Match.NONE for route in request.app.routes):
        return None
    return _ascii_json(
        404,
        {
            "detail": f"no route at {path[:200]}: the API's paths end without a slash; send "
            f"the request to {scope['path'][:200]}"
        },
    )


def _routed(request: Request) -> bool:
    """Whether some route or mount of the app takes the request's path (a missing file under the
    docs' static mount is its 404, not a path without a route)."""
    # as the app's router saw it: inside a mount, the scope's root_path ends with the mount's
    scope = {**request.scope, "root_path": request.scope.get("app_root_path", "")}
    return any(route.matches(scope)[0] != Match.NONE for route in request.app.routes)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path."""
    allowed = []
    for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.routes):
            allowed.append(method)
    return allowed


class _DuplicateKey(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


async def unique_keys(request: Request) -> None:
    """Refuse (422) a JSON body that names one field twice: parsers keep the last value (or the
    first), so ``{"run_id": "a", "run_id": "b"}`` would evaluate a run the client may not have
    meant. Read after FastAPI parsed the body (the bytes are cached); other bodies pass."""
    body = await request.body()
    if not body:
        return
    try:
        json.loads(body, object_pairs_hook=_unique)
    except _DuplicateKey as exc:
        raise InvalidInput(
            f"the request body names the field {exc.args[0][:80]!r} more than once; send each "
            "field once"
        ) from None
    except ValueError:  # not JSON: FastAPI's own answer says so
        return


def add_error_answers(app: FastAPI) -> None:
    """``PipelineError`` → its status and message (``Retry-After`` on a 429, and on a 503 that
    waiting may cure: a dependency down, MLflow restarting); anything else → a 500 naming the
    error's type, logged: never a bare "Internal Server Error"."""

    async def pipeline_error(request: Request, exc: Exception) -> JSONResponse:
        answer = JSONResponse(status_code=exc.status_code, content={"detail": str(exc)})
        if isinstance(exc, TooManyRequests | ServiceUnavailable) and exc.retry_after is not None:
            answer.headers["Retry-After"] = str(exc.retry_after)
        return answer

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]  # ties the answer to its log line and traceback
        log.error("unexpected error %s on %s %s", error_id, request.method, request.url.path,
                  exc_info=exc)  # fmt: skip
        detail = (
            f"internal error ({type(exc).__name__}, error id {error_id}); the service logged it "
            "under that id and keeps serving."
        )
        return JSONResponse(status_code=500, content={"detail": detail})

    app.add_exception_handler(PipelineError, pipeline_error)
    app.add_exception_handler(Exception, unexpected)


class AnswerBugs:
    """ASGI middleware, the innermost: a route's bug answered with the app's JSON 500 (its
    ``Exception`` handler, ``add_error_answers``: logged once, with an error id) and not raised
    on. Left to Starlette's outermost handler, the 500 was sent and the error raised on, so that
    the server logged its traceback a second time, without the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            handler = scope["app"].exception_handlers.get(Exception)
            if started or handler is None:  # half an answer sent: only the server can end it
                raise
            answer = await handler(Request(scope), exc)
            await answer(scope, receive, send)
