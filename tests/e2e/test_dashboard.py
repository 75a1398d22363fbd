"""The dashboard in headless Chromium on the pipeline's run, then the chosen model downstream."""

import time

import mlflow.pytorch
import numpy as np
import pytest
import torch

from dataloader import load_dataset
from launcher import DASHBOARD
from tests.conftest import CHROMIUM_ARGS
from tests.e2e.conftest import screenshots_dir

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.browser
playwright.expect.set_options(timeout=90_000)  # the first page view imports torch and MLflow


@pytest.fixture(scope="module")
def page(pipeline, chromium):
    stack, _ = pipeline
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        page.goto(stack.config.url(DASHBOARD))
        yield page
        browser.close()


def open_tab(page, name: str, shots, expected: str) -> None:
    page.get_by_role("tab", name=name).click()
    playwright.expect(page.get_by_text(expected).first).to_be_visible()
    page.screenshot(path=str(shots / f"{name.lower()}.png"), full_page=True)


def test_dashboard_shows_metrics_evaluation_and_explanations(pipeline, page):
    stack, result = pipeline
    shots = screenshots_dir(stack.config.root)
    playwright.expect(page.get_by_text(result.run_id).first).to_be_visible()
    open_tab(page, "Metrics", shots, "val_auc")
    open_tab(page, "Evaluation", shots, "Test-set metrics (95% confidence intervals)")
    open_tab(page, "Explanations", shots, "Faithfulness")
    assert page.get_by_text("Traceback").count() == 0


def test_download_writes_run_id_and_the_model_predicts_downstream(pipeline, page):
    stack, result = pipeline
    page.get_by_role("tab", name="Choose model").click()
    page.get_by_role("button", name="Download model").click()
    run_id_file = stack.config.root / "run_id.txt"
    deadline = time.monotonic() + 120
    while not run_id_file.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    page.screenshot(path=str(screenshots_dir(stack.config.root) / "deploy.png"), full_page=True)
    assert run_id_file.read_text().strip() == result.run_id

    # A downstream service: read run_id.txt, load the downloaded model, predict a test image.
    model_dir = stack.config.root / "artifacts" / result.run_id / "model"
    model = mlflow.pytorch.load_model(str(model_dir), map_location="cpu").eval()
    test = load_dataset(stack.config.data_dir, image_size=32, channels=3, splits=("test",)).test
    x = torch.from_numpy(test.images[:4]).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        probs = torch.softmax(model(x), dim=1).numpy()
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
