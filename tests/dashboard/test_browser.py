"""The page in headless Chromium: the leaderboard, every tab, an Evaluate job, a comparison.

One flow, as a person uses the page: pick the experiment, click a run in the leaderboard, open
every tab (a screenshot each), evaluate a fresh run through the real evaluator while a proxy in
front of it counts the page's requests, then compare two runs.
"""

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from dashboard import leaderboard
from dashboard.page import TABS
from dashboard.reads import RunQuery, search_runs
from tests.conftest import CHROMIUM_ARGS, ROOT, free_port, serving
from tests.dashboard.conftest import EXPERIMENT

# What each tab shows for the evaluated pipeline run once it has loaded.
EXPECTED = {
    "Metrics": "Parameters",
    "Artifacts": "View a file",
    "Evaluation": "Test-set metrics",
    "Explanations": "Faithfulness",
    "Visualizations": "Class activation maps (Grad-CAM",
    "Compare": "Compare with",
    "Choose model": "Model card: smallcnn-evaluated",
}
ROW_PX = 35  # height of a row of Streamlit's table, header included

pytestmark = pytest.mark.browser


class CountingProxy:
    """Forwards HTTP to ``upstream`` and records (time, method, path) of every request."""

    def __init__(self, upstream: str) -> None:
        self.requests: list[tuple[float, str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                proxy.requests.append((time.monotonic(), self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = requests.request(
                    self.command, upstream + self.path, data=body, headers=headers, timeout=60
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward  # noqa: N815 - http.server names

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "CountingProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()


@pytest.fixture
def evaluator_proxy(evaluator_service):
    with CountingProxy(evaluator_service) as proxy:
        yield proxy


@pytest.fixture
def dashboard_url(mlflow_server, dashboard_runs, evaluator_proxy, tmp_path):
    """``streamlit run dashboard/dashboard.py`` on a free port, working directory tmp_path."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "STORE_DIR": str(tmp_path / "store"),
        "EVALUATOR_URL": evaluator_proxy.url,
        "EXPLAINER_URL": "http://127.0.0.1:9",
        "PIPELINE_API_TOKEN": "s3cret-test-token-0123456789abcdef",
        # A model of its own: the page opens the run the alias names, which other tests of
        # the session move with the default name.
        "MODEL_NAME": f"browser-{port}",
    }
    env.pop("MONGO_URI", None)
    argv = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "dashboard.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal", "--server.allowedHosts", "localhost",
            "--server.allowedHosts", "127.0.0.1"]  # as the launcher runs it  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(argv, url + "/_stcore/health", tmp_path / "streamlit.log", cwd=tmp_path, env=env):
        yield url


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox/multiselect labelled ``label`` by typing."""
    box = page.get_by_test_id("stSelectbox").or_(page.get_by_test_id("stMultiSelect"))
    box = box.filter(has=page.get_by_text(label, exact=True))
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option).first.click()
    page.keyboard.press("Escape")  # a multiselect keeps its menu open


ASC = "attributes.start_time ASC"


def _table_ids(uri: str, experiment_id: str, order: str = "attributes.start_time DESC") -> list:
    """The run ids of the leaderboard's first page, as the page orders them."""
    rows = search_runs(uri, RunQuery(experiment_id, order_by=order, page_size=25)).rows
    return list(leaderboard.table(rows, []).index)


def _row_of(uri: str, experiment_id: str, run_id: str, order: str = ASC) -> int:
    """The position of ``run_id`` in the leaderboard's first page, ordered by ``order``."""
    return _table_ids(uri, experiment_id, order).index(run_id)


def _click_row(page, row: int) -> None:
    """Click the selection marker at the left of leaderboard row ``row`` (0 = first run)."""
    board = page.get_by_test_id("stDataFrame").first
    board.scroll_into_view_if_needed()
    box = board.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + ROW_PX * (row + 1) + ROW_PX / 2)


def _shot(page, path: Path, at_tabs: bool = True) -> None:
    """A screenshot of the window, scrolled so that the run's tabs are at the top."""
    if at_tabs:
        page.get_by_role("tablist").first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
    page.screenshot(path=path)


def _settle(page, expect) -> None:
    """Wait until the script has finished and charts have drawn."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    page.wait_for_timeout(1500)
    assert not page.get_by_test_id("stException").count()
    assert not page.get_by_text("Traceback").count()


def test_leaderboard_tabs_an_evaluate_job_and_a_comparison(
    chromium, mlflow_server, dashboard_runs, fresh_run, dashboard_url, evaluator_proxy, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=120_000)  # 2 shared CPU cores: the first render imports torch
    shots = Path(os.environ.get("DASHBOARD_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    exp = dashboard_runs["experiment"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.set_default_timeout(120_000)
            page.goto(dashboard_url)
            _choose(page, "Experiment (type to search)", EXPERIMENT)
            # The first view opens the newest finished run with a model: the fresh one.
            expect(page.get_by_role("heading", name="smallcnn-fresh")).to_be_visible()
            _settle(page, expect)
            _shot(page, shots / "leaderboard.png", at_tabs=False)

            # A click in the leaderboard opens a run. Oldest first: the fixture's runs are
            # among the 12 rows the table shows, whatever runs other tests added since.
            page.get_by_text("Desc.", exact=True).click()
            _settle(page, expect)
            _click_row(page, _row_of(mlflow_server, exp, dashboard_runs["pipeline"], ASC))
            expect(page.get_by_role("heading", name="smallcnn-evaluated")).to_be_visible()
            page.get_by_text("Desc.", exact=True).click()  # newest first again
            _settle(page, expect)
            for tab in TABS:
                page.get_by_role("tab", name=tab).click()
                expect(page.get_by_text(EXPECTED[tab]).first).to_be_visible()
                _settle(page, expect)
                _shot(page, shots / f"{tab.lower().replace(' ', '_')}.png")

            # Re-sorted, the table ticks no row: a click on the run now in the clicked row's
            # place opens it (a tick kept on the row position made that click clear it).
            newest = _table_ids(mlflow_server, exp)[0]
            _click_row(page, 0)
            expect(page.get_by_text(f"run {newest}").first).to_be_visible()
            _settle(page, expect)
            oldest = _table_ids(mlflow_server, exp, ASC)[0]
            page.get_by_text("Desc.", exact=True).click()
            _settle(page, expect)
            _click_row(page, 0)
            expect(page.get_by_text(f"run {oldest}").first).to_be_visible()
            page.get_by_text("Desc.", exact=True).click()  # newest first again
            _settle(page, expect)

            # Evaluate the fresh run, following the job; count the page's requests meanwhile.
            # Other tests may have made runs of the same name: filter by id (in MLflow), click.
            page.get_by_text("More: MLflow filter, columns, runs per page").click()
            box = page.get_by_label("Filter (MLflow syntax)")
            box.fill(f"attributes.run_id = '{fresh_run}'")
            box.press("Enter")
            expect(page.get_by_text("page 1 · 1 runs")).to_be_visible()
            _settle(page, expect)
            _click_row(page, 0)
            expect(page.get_by_text(f"run {fresh_run}").first).to_be_visible()
            page.get_by_role("tab", name="Evaluation").click()
            button = page.get_by_role("button", name="Evaluate this run")
            button.click()
            start = time.monotonic()
            expect(page.get_by_test_id("stProgress")).to_be_visible()
            _shot(page, shots / "evaluation_running.png")
            expect(page.get_by_text("Test-set metrics").first).to_be_visible(timeout=400_000)
            took = time.monotonic() - start
            _settle(page, expect)
            expect(page.get_by_role("button", name="Run again")).to_be_visible()
            _shot(page, shots / "evaluation_done.png")

            # Compare the fresh run with the evaluated one (listed once the filter is cleared).
            box.fill("")
            box.press("Enter")
            expect(page.get_by_text("page 1 · 1 runs")).to_have_count(0)
            _settle(page, expect)
            _choose(page, "Compare with (up to 3 runs)", "smallcnn-evaluated")
            _settle(page, expect)
            page.get_by_role("tab", name="Compare").click()
            expect(page.get_by_text("Confusion matrices").first).to_be_visible()
            _settle(page, expect)
            _shot(page, shots / "compare_two.png")
        except Exception:
            page.screenshot(path=shots / "failure.png")
            raise
        finally:
            browser.close()
    polls = [t for t, method, path in evaluator_proxy.requests if path.startswith("/jobs/")]
    rate = len(polls) / max(took, 1.0)
    print(f"followed the job for {took:.1f} s with {len(polls)} polls: {rate:.2f} per second")
    assert polls and rate <= 1.1, (len(polls), took)
    saved = {p.name for p in shots.iterdir()}
    assert {f"{t.lower().replace(' ', '_')}.png" for t in TABS} <= saved
