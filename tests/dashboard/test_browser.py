"""The page in headless Chromium: pick a run, open every tab, save screenshots."""

import os
import sys
from pathlib import Path

import pytest

from dashboard.page import TABS
from tests.conftest import CHROMIUM_ARGS, ROOT, free_port, serving

# What each tab shows for the evaluated pipeline run once it has loaded.
EXPECTED = {
    "Metrics": "Parameters",
    "Artifacts": "View a file",
    "Evaluation": "Test-set metrics",
    "Explanations": "Faithfulness",
    "Visualizations": "Sample predictions",
    "Compare": "Compare with",
    "Choose model": "Model card: smallcnn-evaluated",
}

pytestmark = pytest.mark.browser


@pytest.fixture
def dashboard_url(mlflow_server, dashboard_runs, tmp_path):
    """``streamlit run dashboard/dashboard.py`` on a free port, working directory tmp_path."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "STORE_DIR": str(tmp_path / "store"),
        "EVALUATOR_URL": "http://127.0.0.1:9",
        "EXPLAINER_URL": "http://127.0.0.1:9",
    }
    env.pop("MONGO_URI", None)
    argv = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "dashboard.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(argv, url + "/_stcore/health", tmp_path / "streamlit.log", cwd=tmp_path, env=env):
        yield url


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label`` by typing into it."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option).first.click()


def test_pick_a_run_and_open_every_tab(chromium, dashboard_url, dashboard_runs, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=120_000)  # 2 shared CPU cores: the first render imports torch
    shots = Path(os.environ.get("DASHBOARD_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(90_000)
            page.goto(dashboard_url)
            expect(page.get_by_text("MLflow tracking URI")).to_be_visible()
            _choose(page, "Experiment (type to search)", "dashboard-tests")
            _choose(page, "Run", "smallcnn-evaluated")
            expect(page.get_by_role("heading", name="smallcnn-evaluated")).to_be_visible()
            for tab in TABS:
                page.get_by_role("tab", name=tab).click()
                expect(page.get_by_text(EXPECTED[tab]).first).to_be_visible()
                if tab == "Visualizations":
                    page.get_by_role("button", name="Compute embedding and activation maps").click()
                    expect(
                        page.get_by_text("Class activation maps (Grad-CAM").first
                    ).to_be_visible()
                # The status widget shows while the script runs; then let charts draw.
                expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
                page.wait_for_timeout(1500)
                assert not page.get_by_test_id("stException").count()
                page.screenshot(path=shots / f"{tab.lower().replace(' ', '_')}.png")
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == sorted(
        f"{t.lower().replace(' ', '_')}.png" for t in TABS
    )
