"""``/docs`` (Swagger UI), ``/redoc`` and ``/openapi.json`` served without the internet.

The Swagger UI and ReDoc scripts come from the ``fastapi-offline`` package's static folder and
are served under ``/static/docs/``, so the pages work on a network without internet access (no
CDN, no web fonts). With ``PIPELINE_API_TOKEN`` set, the three pages need the token like the
rest of the API unless ``API_DOCS_PUBLIC`` is true; the static scripts are public library files.
A Content-Security-Policy keeps the pages from contacting any other host.
"""

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/static/docs"
DOCS_PATHS = ("/openapi.json", "/docs", "/redoc")
ASSETS = files("fastapi_offline") / "static"
# The pages load nothing from other hosts (ReDoc's "by Redocly" logo would be fetched otherwise).
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def add_docs(app: FastAPI, auth: list[Any], public: bool) -> None:
    """Add ``/openapi.json``, ``/docs`` and ``/redoc`` to ``app`` (created with all three off).

    Args:
        auth: The token dependencies, applied unless ``public``.
        public: Serve the three pages without a token (``API_DOCS_PUBLIC``).
    """
    dependencies = [] if public else auth
    app.mount(STATIC_URL, StaticFiles(directory=str(ASSETS)), name="docs-static")

    @app.get("/openapi.json", include_in_schema=False, dependencies=dependencies)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=dependencies)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
        )
        page.headers["Content-Security-Policy"] = CSP
        return page

    @app.get("/redoc", include_in_schema=False, dependencies=dependencies)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CSP
        return page
