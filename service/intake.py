"""What every request meets before routing: the liveness short cut, the token gate and the
request-body limits, as ASGI middleware (outermost first).

- ``HealthFastPath``: ``GET`` and ``HEAD /health`` answered at once, without the token.
- ``TokenGate``: with ``PIPELINE_API_TOKEN`` set, 401 for a request without the Bearer token
  before anything reads its body, so an unauthenticated client can make a service hold nothing;
  without it, 403 for a request addressed to a host name other than ``localhost`` (DNS
  rebinding: a web page's own name re-pointed at this machine would reach an open API).
- ``BodyLimit``: 400 for a body on a method no route takes one on (``GET``, ``HEAD``,
  ``DELETE``, ``OPTIONS``); 413 for a body over ``MAX_BODY_BYTES``; 503 (``Retry-After``) while
  the bodies of the requests in progress would exceed the service's ``BodyBudget``; 408 for a
  body that does not arrive within ``BODY_TIMEOUT_S``. It reads the body before routing, so that
  no route sees a body it would have to give up half way.
"""

import asyncio
import hmac
import ipaddress
import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUDGET_RETRY_AFTER_S = 5
"""What a 503 for a full body budget asks the client to wait (seconds)."""

BODILESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
"""Methods no route of the services takes a body on: ``BodyLimit`` hands such a request on
without reading a body it may carry or taking budget for it (a route that never reads its body
would keep a share until it answers: a ``GET /jobs/{id}?wait=600``, ten minutes); routing
answers it as without a body (405 where the path has no route for the method)."""

UNAUTHORIZED = (
    "missing or wrong API token; send the header 'Authorization: Bearer <token>' with the value "
    "of PIPELINE_API_TOKEN."
)


def route_path(scope: Scope) -> str:
    """The request's path without the ``root_path`` a proxy mounts the service under, by the
    rule routing uses (starlette's ``get_route_path``): the root ends at a ``/`` or at the end
    of the path, so ``/apihealth`` under ``/api`` is not ``/health``."""
    path, root = scope["path"], scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


def token_matches(header: bytes | None, token: bytes) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <token>``, read as
    ``fastapi.security.HTTPBearer`` reads it ("<scheme> <credentials>", the scheme in any case)
    and compared in constant time."""
    scheme, _, given = (header or b"").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case), or None."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


def declared_length(scope: Scope) -> int:
    """The request's ``Content-Length``; 0 without one (or a malformed one, which the server
    refuses before the app sees it)."""
    try:
        return int(header(scope, b"content-length") or 0)
    except ValueError:
        return 0


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body: a ``Content-Length`` over 0, or chunked."""
    return header(scope, b"transfer-encoding") is not None or declared_length(scope) > 0


async def send_error(
    send: Send,
    status: int,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    close: bool = True,
) -> None:
    """A JSON ``{"detail": ...}`` answer; ``close``: the connection closes after it, so that
    whatever is left of the request body is never read."""
    body = json.dumps({"detail": detail}).encode()
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if close:
        start_headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


class HealthFastPath:
    """ASGI middleware: ``GET /health`` (and ``HEAD``, which load balancers probe with) answered
    before the other middleware, routing and dependencies, with the bytes the route would send.

    A liveness probe must answer at once while submissions queue on the event loop: with a job
    running and 50 concurrent clients, ``/health`` p99 fell from 40–56 to 30–44 ms in rounds
    without a stall (side by side with the route alone, same load as
    benchmarks/bench_evaluator.py). Every other request goes on unchanged.
    """

    BODY = b'{"status":"ok"}'

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and route_path(scope) == "/health"
        ):
            length = str(len(self.BODY)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", length)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            body = b"" if scope["method"] == "HEAD" else self.BODY
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class TokenGate:
    """ASGI middleware: with a token, a request that lacks ``Authorization: Bearer <token>``
    gets 401 (``WWW-Authenticate: Bearer``) before anything reads its body; without one, a
    request to a host name other than localhost gets 403 (``local_host``).

    ``open_paths`` and paths under ``open_prefixes`` need no token (``/health``, the docs'
    static scripts, the docs pages with ``API_DOCS_PUBLIC``). Every other path needs it, an
    unknown one too, so that nothing about the API is learnt without the token.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        open_paths: Iterable[str] = ("/health",),
        open_prefixes: Iterable[str] = (),
    ) -> None:
        self.app = app
        # check_token refused a token with characters other than printable ASCII at start-up.
        self.token = token.encode("ascii") if token else None
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)

    def allows(self, scope: Scope) -> bool:
        """Whether the request may go on: no token set, an open path, or the right token."""
        if self.token is None:
            return True
        path = route_path(scope)
        if path in self.open_paths or path.startswith(self.open_prefixes):
            return True
        return token_matches(header(scope, b"authorization"), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token is None:
            host = header(scope, b"host")
            if not local_host(host):
                await send_error(send, 403, foreign_host(host), close=_has_body(scope))
                return
        if scope["type"] != "http" or self.allows(scope):
            await self.app(scope, receive, send)
            return
        # A request without a body leaves nothing unread: its connection may stay open.
        headers = [(b"www-authenticate", b"Bearer")]
        await send_error(send, 401, UNAUTHORIZED, headers, close=_has_body(scope))


def local_host(host: bytes | None) -> bool:
    """Whether a request without a token may be answered for its ``Host`` header: an IP address
    (IPv4, or IPv6 in brackets) or ``localhost`` (and ``*.localhost``, which browsers resolve to
    this machine themselves), with any port; no header (HTTP/1.0) too. A DNS name is refused:
    a web page can point its own name at 127.0.0.1 (DNS rebinding) and, its origin unchanged,
    read the answers of an API without a token; an IP address is the page's origin only when
    the page was loaded from this service itself."""
    if host is None:
        return True
    name = host.decode("latin-1").strip().lower()
    if name.startswith("["):  # [::1]:5006
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.split(":")[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def foreign_host(host: bytes | None) -> str:
    """The 403 ``detail`` for a request without a token to the host name ``host``."""
    shown = (host or b"").decode("latin-1")[:100]
    return (
        f"without PIPELINE_API_TOKEN this service answers only requests addressed to localhost "
        f"or an IP address, not to the host name {shown!r} (a web page could point a name of its "
        "own at this machine and use the API: DNS rebinding); call it as http://127.0.0.1:<port>"
        ", or set PIPELINE_API_TOKEN on the services and their clients to reach it by name "
        "(from other machines, as Compose and Kubernetes do)"
    )


Refusal = Callable[[Send], Awaitable[None]]
"""An answer ``BodyLimit`` sends instead of handing the request on (a 413 or a 503)."""


class BodyBudget:
    """The bytes of request bodies one service holds at once, across all its connections.

    A request takes its share (its ``Content-Length``, or what has arrived of a chunked body)
    before its body is read and gives it back once it is answered, or (``BodyLimit`` with
    ``hold_until_answered=False``) once its body is handed on. Used on the event loop only, so
    it needs no lock.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        """Hold ``size`` more bytes; False (nothing held) when that would pass the limit."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


class BodyLimit:
    """ASGI middleware: reads a request body (up to ``max_bytes``) before routing.

    - A ``GET``, ``HEAD``, ``DELETE`` or ``OPTIONS`` request is handed on as it comes, its body
      (if it carries one) unread and taking nothing from the budget: no route reads such a
      body, so its share would be held until the answer (``BODILESS_METHODS``).
    - A declared ``Content-Length`` over ``max_bytes`` gets 413 before anything is read; a
      chunked body gets it as soon as it passes the limit.
    - The body's bytes are taken from a ``BodyBudget`` of ``budget_bytes`` (at least
      ``max_bytes``) shared by every connection; when it is spent the request gets 503 with
      ``Retry-After``, before its body is read (a declared length) or as soon as it is spent
      (chunked). ``hold_until_answered``: the bytes are given back when the request is answered
      (the predictor, whose uploads stay spooled until then); else as soon as the last piece of
      the body is handed on (the job services, whose small JSON bodies are parsed at once and
      whose ``?wait=`` may keep a request open for minutes, after its client hung up too).
    - A body that has not arrived completely after ``timeout_s`` seconds gets 408, and what
      arrived of it is dropped.

    The body is handed on in the pieces it came in, each dropped here once handed on, so it is
    not held twice (the multipart parser writes large files to disk as it reads).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        setting: str = "MAX_BODY_BYTES",
        hint: str = "the API's requests are small JSON objects: send only the documented fields.",
        budget_bytes: int | None = None,
        budget_setting: str = "MAX_BODY_BUFFER_BYTES",
        timeout_s: float = 60.0,
        hold_until_answered: bool = True,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.setting = setting
        self.hint = hint
        # At least one body of the largest size must fit, else such a request could never pass.
        self.budget = BodyBudget(max(budget_bytes or max_bytes, max_bytes))
        self.budget_setting = budget_setting
        self.timeout_s = timeout_s
        self.hold_until_answered = hold_until_answered

    def message(self) -> str:
        return f"request body larger than {self.max_bytes} bytes ({self.setting}); {self.hint}"

    async def _too_large(self, send: Send) -> None:
        await send_error(send, 413, self.message())

    async def _busy(self, send: Send) -> None:
        detail = (
            f"the service holds {self.budget.limit} bytes of request bodies at once "
            f"({self.budget_setting}) and those of the requests in progress fill it; retry "
            f"after {BUDGET_RETRY_AFTER_S} seconds"
        )
        retry = (b"retry-after", str(BUDGET_RETRY_AFTER_S).encode())
        await send_error(send, 503, detail, [retry])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in BODILESS_METHODS:  # no route reads a body of these: not read
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared > self.max_bytes:
            await self._too_large(send)
            return
        if not self.budget.take(declared):
            await self._busy(send)
            return
        held = [declared]  # what this request holds of the budget, grown by a chunked body

        def give_back() -> None:
            self.budget.give_back(held[0])
            held[0] = 0

        try:
            try:
                async with asyncio.timeout(self.timeout_s):
                    body = await self._read(receive, held)
            except TimeoutError:
                detail = (
                    f"the request body did not arrive completely within {self.timeout_s:g} "
                    "seconds (BODY_TIMEOUT_S); send it in one go, or retry on a faster link"
                )
                await send_error(send, 408, detail)
                return
            if body is None:  # the client went away: nobody to answer
                return
            if not isinstance(body, deque):
                # Sent here, outside the time limit: a send that outlasts it is not cut short by
                # a 408, which would start a second answer.
                await body(send)
                return
            handed_on = None if self.hold_until_answered else give_back
            await self.app(scope, _replay(body, receive, handed_on), send)
        finally:
            give_back()

    async def _read(self, receive: Receive, held: list[int]) -> deque[bytes] | Refusal | None:
        """The body's pieces; the answer to send instead (413, 503); None when the client left."""
        chunks: deque[bytes] = deque()
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                return self._too_large
            if received > held[0]:  # a chunked body (or none declared): take as it comes
                if not self.budget.take(received - held[0]):
                    return self._busy
                held[0] = received
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks


def _replay(
    chunks: deque[bytes], receive: Receive, handed_on: Callable[[], None] | None = None
) -> Receive:
    """A ``receive`` that hands on ``chunks`` one message each (letting go of each), then
    whatever the server sends (a disconnect); ``handed_on`` is called once the last is."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        chunk = chunks.popleft() if chunks else b""  # no body at all: one empty message
        delivered = not chunks
        if delivered and handed_on is not None:
            handed_on()
        return {"type": "http.request", "body": chunk, "more_body": not delivered}

    return replay
