"""The predictor's ``input_note``: a colour image sent to a model of grey images was read as
grey, and the answer says so; a grey image stored as RGB, or any image to a colour model, has
none."""

from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets
from PIL import Image

from dashboard.choose import choose_run
from tests.conftest import log_untrained_run
from tests.predictor.conftest import post_images, wait_ready

PHOTO = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"  # a colour photograph


@pytest.fixture(scope="session")
def grey_run(mlflow_server, demo_data) -> str:
    """A servable run of a model of grey images (channels 1)."""
    return log_untrained_run(mlflow_server, demo_data, seed=21, channels=1)


@pytest.fixture
def grey_as_rgb(breastmnist, tmp_path) -> Path:
    """A real BreastMNIST ultrasound saved as an RGB PNG of equal channels, as many exports."""
    image = np.load(breastmnist)["test_images"][0]
    path = tmp_path / "ultrasound.png"
    Image.fromarray(np.stack([image] * 3, -1)).resize((112, 112)).save(path)
    return path


def _first(predictor: str, settings, run_id: str, image: Path) -> dict:
    """The prediction of ``image`` by ``run_id``'s model, served."""
    choose_run(run_id, "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    answer = post_images(predictor, [image])
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"][0]


def test_a_colour_image_to_a_grey_model_is_noted(predictor, settings, grey_run):
    note = _first(predictor, settings, grey_run, PHOTO)["input_note"]
    assert note == (
        "colour image read as grey: the model takes grey images (channels 1); its colours were "
        "not used"
    )


def test_a_grey_image_stored_as_rgb_to_a_grey_model_is_not_noted(
    predictor, settings, grey_run, grey_as_rgb
):
    assert _first(predictor, settings, grey_run, grey_as_rgb)["input_note"] is None


def test_a_colour_image_to_a_colour_model_is_not_noted(predictor, settings, served_runs):
    assert _first(predictor, settings, served_runs[0], PHOTO)["input_note"] is None
