"""Text made literal by ``dashboard.markup.plain`` as Chromium shows it under Streamlit: a web
address in it is no link (Streamlit's Markdown linked ``http://127.0.0.1`` of an escaped
``http:\\//127.0.0.1:5007``, its port cut), and reads whole."""

import pytest

from tests.conftest import CHROMIUM_ARGS
from tests.dashboard.conftest import streamlit_script

pytestmark = pytest.mark.browser

APP = """
import streamlit as st

from dashboard.markup import plain

st.caption(plain("The predictor at http://127.0.0.1:5007 serves classifier version 1."))
st.markdown(plain("Or www.example.org/p and [open](https://example.org) as written."))
st.markdown("END")
"""


@pytest.fixture
def app_url(tmp_path):
    with streamlit_script(APP, tmp_path) as url:
        yield url


def test_a_web_address_in_plain_text_is_no_link_and_reads_whole(chromium, app_url):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(app_url)
            expect(page.get_by_text("END")).to_be_visible()
            links = page.eval_on_selector_all(
                '[data-testid="stMain"] a', "links => links.map(a => a.href)"
            )
            text = page.inner_text('[data-testid="stMain"]')
        finally:
            browser.close()
    assert links == []
    assert "The predictor at http://127.0.0.1:5007 serves classifier version 1." in text
    assert "Or www.example.org/p and [open](https://example.org) as written." in text
