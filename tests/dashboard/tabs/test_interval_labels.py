"""The Evaluation tab's interval charts as Chromium draws them under Streamlit's theme: every
row named on the y axis, and a chart of one row still with its x axis (its scale)."""

from pathlib import Path

import pytest

from tests.conftest import CHROMIUM_ARGS
from tests.dashboard.conftest import streamlit_script

pytestmark = pytest.mark.browser

# Nine higher-is-better figures (as an evaluation of cnn-3ep reports) and one lower-is-better.
APP = """
import pandas as pd
import streamlit as st

from dashboard.tabs.evaluation import interval_charts

names = ["accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "precision_macro",
         "precision_weighted", "recall_macro", "recall_weighted", "roc_auc_macro", "ece"]
table = pd.DataFrame({"metric": names, "value": [0.8 + i / 100 for i in range(9)] + [0.05],
                      "ci_low": [0.7 + i / 100 for i in range(9)] + [0.03],
                      "ci_high": [0.9 + i / 100 for i in range(9)] + [0.08]})
for chart, rows in interval_charts(table):
    st.altair_chart(chart, width="stretch")
"""
# The axis labels drawn (not hidden as overlapping) and inside the chart's element (a label
# drawn below a chart squeezed into its height is cut off: not seen).
LABELS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(chart => {
    const box = chart.getBoundingClientRect();
    const seen = t => {
        const r = t.getBoundingClientRect();
        return t.getAttribute('opacity') !== '0' && r.top >= box.top - 1
            && r.bottom <= box.bottom + 1;
    };
    const texts = axis => [...chart.querySelectorAll(`g.role-axis[aria-label^="${axis}"] \
g.role-axis-label text`)].filter(seen).map(t => t.textContent);
    return {y: texts('Y-axis'), x: texts('X-axis')};
})"""


@pytest.fixture
def app_url(tmp_path):
    with streamlit_script(APP, tmp_path) as url:
        yield url


@pytest.mark.parametrize("width", [1400, 390])  # a desktop window and a phone
def test_every_row_is_named_and_a_one_row_chart_keeps_its_x_axis(
    chromium, app_url, width, tmp_path: Path
):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1200})
            page.set_default_timeout(120_000)
            page.goto(app_url)
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            expect(charts).to_have_count(2, timeout=120_000)
            for chart in (charts.nth(0), charts.nth(1)):  # each drawn, its axes labelled
                labels = chart.locator('svg g.role-axis[aria-label^="Y-axis"] text')
                expect(labels.first).to_be_attached(timeout=120_000)
            page.wait_for_timeout(500)  # the layout settled (labels placed, overlap resolved)
            found = page.evaluate(LABELS)
            page.screenshot(path=tmp_path / "intervals.png")
        finally:
            browser.close()
    higher, lower = found
    # named as the leaderboard names them (dashboard.readable)
    assert higher["y"] == [
        "test accuracy", "test balanced accuracy", "test F1 (macro)", "test F1 (weighted)",
        "test precision (macro)", "test precision (weighted)", "test recall (macro)",
        "test recall (weighted)", "test AUC (macro)",
    ]  # fmt: skip
    assert lower["y"] == ["test calibration error (ECE)"]
    assert len(lower["x"]) >= 2, lower  # a scale to read the one interval against
    assert len(higher["x"]) >= 2, higher
