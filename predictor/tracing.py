"""Which model answered which ``POST /predict``: headers on every answer and one log line each.

``PredictTrace`` (ASGI middleware, outermost) adds to every ``/predict`` answer, success or
error, the 500 of a bug included:

- ``X-Request-ID``: the request's own when it is 1 to 128 characters of letters, digits and
  ``._:/+=@-`` (one header), else a generated one (32 hex digits);
- ``X-Model-Name`` and ``X-Model-Version``: the registered model and the version that answered
  (the one the request took; for an answer given before it took one, such as a 413 or a 422 of
  the body, the version served then), ``none`` while none is loaded. A 401 carries neither: a
  client without the token is not told what is served (``/ready`` needs the token too).

and logs one line on ``predictor.requests`` (INFO; WARNING for a 4xx, ERROR for a 5xx:
``line_level``): request id, status, model, version, number of images (``-`` before the route
counted them) and latency in ms; never a file name or any other content of the request, which
may hold patient data.
"""

import logging
import re
import time
import uuid
from urllib.parse import quote

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import route_path

__all__ = ["MODEL_NAME_HEADER", "MODEL_VERSION_HEADER", "REQUEST_ID_HEADER", "PredictTrace"]

REQUEST_ID_HEADER = "X-Request-ID"
MODEL_NAME_HEADER = "X-Model-Name"
HEADER_SAFE = "-._~@/:+!$&'()*,;= "  # kept as sent in the model headers; the rest %-encoded
MODEL_VERSION_HEADER = "X-Model-Version"
NO_MODEL = "none"
"""``X-Model-Version`` while no model is loaded."""
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")

log = logging.getLogger("predictor.requests")
REPEAT_S = 600.0  # a problem that stays is logged again this often


class Repeats:
    """Log lines of a problem found at every look at the alias (a refused version, MLflow down):
    logged when first found, then again every ``REPEAT_S`` while each look finds it, not at every
    ``PREDICTOR_POLL_S`` (2,880 lines a day at 30 s). A line that a look did not find is logged
    anew when a later look finds it (A, then B, then A again: three lines). Lines keep their
    template and arguments (log aggregators group by them)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        # message -> when it was last logged: this look's, and the look before's
        self._now: dict[str, float] = {}
        self._before: dict[str, float] = {}

    def next_look(self) -> None:
        self._before, self._now = self._now, {}

    def log(self, level: int, fmt: str, *args: object, exc_info: bool = False) -> None:
        message, now = fmt % args, time.monotonic()
        logged = self._now.get(message, self._before.get(message))
        if logged is None or now - logged >= REPEAT_S:
            self.logger.log(level, fmt, *args, exc_info=exc_info)
            logged = now
        self._now[message] = logged

    def warning(self, fmt: str, *args: object) -> None:
        self.log(logging.WARNING, fmt, *args)

    def clear(self) -> None:
        """The problem is over: its lines are logged again should it come back."""
        self._now, self._before = {}, {}


def request_id(scope: Scope) -> str:
    """The request's ``X-Request-ID`` when it is one safe value (``SAFE_REQUEST_ID``), else a
    new one: it is logged and echoed, so it must not carry line breaks or markup."""
    sent = [v for k, v in scope.get("headers", []) if k == b"x-request-id"]
    if len(sent) == 1 and SAFE_REQUEST_ID.fullmatch(given := sent[0].decode("latin-1")):
        return given
    return uuid.uuid4().hex


def line_level(status: int | None) -> int:
    """The level of a request's line: ERROR for a 5xx (the service failed it: alert on these),
    WARNING for a 4xx or no answer (the client's request, or the client gone), else INFO."""
    if status is not None and status >= 500:
        return logging.ERROR
    return logging.WARNING if status is None or status >= 400 else logging.INFO


class PredictTrace:
    """ASGI middleware: ``/predict``'s trace headers and log line (see the module); the route
    puts the model it took in ``request.state.served`` and its number of files in
    ``request.state.images``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) != "/predict":
            await self.app(scope, receive, send)
            return
        started, rid = time.perf_counter(), request_id(scope)
        state = scope.setdefault("state", {})
        status: int | None = None  # None until the answer starts
        model = (scope["app"].state.settings.model_name, NO_MODEL)
        logged = False

        def log_line() -> None:
            nonlocal logged
            logged = True
            ms = (time.perf_counter() - started) * 1000
            log.log(line_level(status), "%s /predict request_id=%s status=%s model=%s "
                    "version=%s images=%s latency_ms=%.1f", scope["method"], rid, status or "-",
                    *model, state.get("images", "-"), ms)  # fmt: skip

        async def traced(message: Message) -> None:
            nonlocal status, model
            if message["type"] == "http.response.body" and not message.get("more_body"):
                log_line()  # before the last bytes: the line exists once the client has them
            if message["type"] == "http.response.start":
                status, model = message["status"], self._model(scope, state)
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = rid
                if status != 401:  # percent-encoded: a header carries latin-1 without CR/LF
                    headers[MODEL_NAME_HEADER], headers[MODEL_VERSION_HEADER] = (
                        quote(str(part), safe=HEADER_SAFE) for part in model
                    )
            await send(message)

        try:
            await self.app(scope, receive, traced)
        except Exception as exc:
            # A bug: answered here with the app's JSON 500 (which logs it), not by Starlette's
            # outermost handler, so that the 500 carries the headers too.
            handler = scope["app"].exception_handlers.get(Exception)
            if status is not None or handler is None:
                raise
            answer = await handler(Request(scope), exc)
            await answer(scope, receive, traced)
        finally:
            if not logged:  # no answer sent (a crash mid-answer, a client gone)
                log_line()

    @staticmethod
    def _model(scope: Scope, state: dict) -> tuple[str, str]:
        """(registered model, version) that answered, or the served one, or none loaded."""
        served = state.get("served")
        if served is None:
            holder = getattr(scope["app"].state, "holder", None)
            served = holder.current if holder is not None else None
        if served is not None:
            return served.model_name, served.version
        return scope["app"].state.settings.model_name, NO_MODEL
