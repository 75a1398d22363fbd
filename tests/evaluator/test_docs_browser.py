"""``/docs`` and ``/redoc`` in headless Chromium with every request to another host blocked."""

from urllib.parse import urlsplit

import pytest

from common import Settings
from evaluator.app import create_app
from tests.conftest import CHROMIUM_ARGS, LiveServer

pytestmark = pytest.mark.browser

TOKEN = "docs-browser-token-0123456789abcdef"


@pytest.fixture
def docs_url(tmp_path, unreachable_uri):
    """An evaluator (token set, docs behind it) whose MLflow is not needed for the docs."""
    settings = Settings(
        _env_file=None, mlflow_tracking_uri=unreachable_uri, data_dir=tmp_path,
        store_dir=tmp_path / "store", mongo_uri=None, pipeline_api_token=TOKEN,
    )  # fmt: skip
    with LiveServer(create_app(settings)) as live:
        yield live.url


def open_offline(chromium: str, url: str, check) -> list[str]:
    """Open ``url`` with the token header, abort requests to non-local hosts, run ``check(page)``;
    returns the blocked URLs."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def route(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
            context.route("**/*", route)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            check(page)
        finally:
            browser.close()
    return blocked


def test_swagger_ui_lists_the_operations_offline(chromium, docs_url):
    from playwright.sync_api import expect

    def check(page) -> None:
        expect(page.locator(".opblock-summary-path", has_text="/evaluate")).to_be_visible()
        for method in ("get", "delete"):
            path = page.locator(
                f".opblock-{method} .opblock-summary-path", has_text="/jobs/{job_id}"
            )
            expect(path).to_be_visible()

    assert open_offline(chromium, f"{docs_url}/docs", check) == []


def test_redoc_lists_the_operations_offline(chromium, docs_url):
    from playwright.sync_api import expect

    def check(page) -> None:
        expect(page.get_by_text("Queue an evaluation of").first).to_be_visible()

    assert open_offline(chromium, f"{docs_url}/redoc", check) == []
