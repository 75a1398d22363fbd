"""The shell every service's FastAPI app shares (evaluator, explainer, predictor), in one place.

``service_app`` refuses a weak ``PIPELINE_API_TOKEN`` at start-up, serves ``/docs``, ``/redoc``
and ``/openapi.json`` offline behind the token (``service.docs``), answers validation errors
without echoing large inputs, any ``PipelineError`` with its status and anything unexpected with
a JSON 500, and, before routing (``service.intake``), refuses requests without the token before
reading their bodies, and bodies over a limit, beyond the service's budget or too slow to arrive.
A service adds its routers and its own error answers. It adds no middleware to the app
``service_app`` returns: ``add_middleware`` wraps the middleware added before, so one added
afterwards would run before ``HealthFastPath`` and ``TokenGate``, on requests without the token
too, and could read a body before ``BodyLimit`` limits it. A middleware that must see requests
belongs in ``service_app``, added before ``BodyLimit`` (it then runs after the guards).
``RequestMetrics`` (``service.metrics``) is the exception: it reads nothing of a request, only the
status of its answer, so it runs right after ``HealthFastPath`` and counts the guards' refusals
too; ``GET /metrics`` needs the token like every route but ``/health``.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from common import Settings, configure_logging
from service.docs import DOCS_PATHS, STATIC_URL, add_docs
from service.intake import UNAUTHORIZED, BodyLimit, HealthFastPath, TokenGate, header, token_matches
from service.metrics import RequestMetrics, add_metrics
from service.security import (
    AnswerBugs,
    add_error_answers,
    check_token,
    trailing_slash,
    validation_error,
)

# Dependencies that do no blocking work are ``async def``: FastAPI runs a plain ``def`` in the
# thread pool, one hop per dependency per request (see jobs.api).


async def get_app_settings(request: Request) -> Settings:
    """Dependency: the settings the app was created with."""
    return request.app.state.settings


_bearer = HTTPBearer(auto_error=False, description="PIPELINE_API_TOKEN, when the service has one")


async def require_token(
    request: Request,
    settings: Annotated[Settings, Depends(get_app_settings)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency: with ``PIPELINE_API_TOKEN`` set, require ``Authorization: Bearer <token>``.

    ``TokenGate`` has refused a request without it before its body was read; this check (the
    same ``token_matches``) puts the Bearer scheme into the OpenAPI docs (``_bearer``, whose
    reading of the header is not used), and holds should a route be served without the gate.
    """
    token = settings.pipeline_api_token
    if not token:
        return
    # check_token refused a token with characters other than printable ASCII at start-up.
    if not token_matches(header(request.scope, b"authorization"), token.encode("ascii")):
        raise HTTPException(
            status_code=401,
            detail=UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
        )


def service_app(
    title: str,
    lifespan: Callable[[FastAPI], Any],
    settings: Settings,
    http_errors: Callable[[Request, Exception], Awaitable[Response]],
    body_limit: dict[str, Any],
) -> FastAPI:
    """A FastAPI app for ``settings`` with the shared guards; ``http_errors`` answers the
    framework's own HTTP errors (a service turns some 400s into its documented 422s),
    ``body_limit`` holds ``BodyLimit``'s options (``max_bytes``, ``budget_bytes``,
    ``hold_until_answered``, and ``setting``, ``budget_setting`` and ``hint`` for its messages;
    the time limit is ``BODY_TIMEOUT_S``). The ``service`` label of its metrics (``/metrics``,
    ``app.state.metrics``) is ``title`` in lower case.

    Raises:
        InsecureToken: ``PIPELINE_API_TOKEN`` is set but empty, a placeholder or short.
    """
    check_token(settings.pipeline_api_token)
    configure_logging(settings.log_level)
    app = FastAPI(
        title=title,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # a 404 saying where, not a redirect to the Host sent (below)
    )
    app.state.settings = settings
    add_docs(app, [Depends(require_token)], public=settings.api_docs_public)
    metrics = add_metrics(app, title.lower(), [Depends(require_token)])
    add_error_answers(app)
    app.add_exception_handler(RequestValidationError, validation_error)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        hint = trailing_slash(request, exc)
        return hint if hint is not None else await http_errors(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(AnswerBugs)  # added first: the innermost, next to the routes
    app.add_middleware(BodyLimit, timeout_s=settings.body_timeout_s, **body_limit)
    # Added after BodyLimit, so it runs before it: a request without the token is refused
    # before any of its body is read or counted.
    open_paths = ["/health", *(DOCS_PATHS if settings.api_docs_public else ())]
    app.add_middleware(
        TokenGate,
        token=settings.pipeline_api_token,
        open_paths=open_paths,
        open_prefixes=[STATIC_URL + "/"],
    )
    app.add_middleware(RequestMetrics, metrics=metrics)  # outside the guards: refusals count
    app.add_middleware(HealthFastPath)  # added last: the outermost, it runs first
    return app
