"""The predictor's answer to an image unlike the served model's training images."""

import numpy as np
import pytest
from PIL import Image

from dashboard.choose import choose_run
from tests.predictor.conftest import post_images, wait_ready
from tests.predictor.test_metrics import scrape, value
from trainer import train


@pytest.fixture(scope="module")
def checked_run(mlflow_server, demo_data, tmp_path_factory) -> str:
    """A run trained by the real trainer (one epoch): its model carries the check."""
    return train([
        "--data-dir", str(demo_data), "--experiment", "tests", "--tracking-uri", mlflow_server,
        "--epochs", "1", "--batch-size", "32", "--ensemble", "1", "--threads", "1",
        "--checkpoint-dir", str(tmp_path_factory.mktemp("checkpoints")), "--no-progress",
    ])  # fmt: skip


def test_an_image_unlike_the_training_images_is_flagged_and_counted(
    predictor, settings, checked_run, demo_data, tmp_path
):
    choose_run(checked_run, "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)).save(noise)
    answer = post_images(predictor, [noise, *sorted((demo_data / "test").rglob("*.png"))[:3]])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ood_check"]["quantile"] == 0.99 and body["ood_check"]["validation_images"] > 0
    first = body["predictions"][0]
    assert first["out_of_distribution"] is True and first["ood_score"] > 1
    for p in body["predictions"]:
        assert p["out_of_distribution"] == (p["ood_score"] > 1)
    flagged = sum(p["out_of_distribution"] for p in body["predictions"])
    model = {"model": settings.model_name, "version": "1"}
    assert (
        value(scrape(predictor), "mlpipeline_out_of_distribution_images_total", **model) == flagged
    )
