"""What the logged model's wrapper says about the image decoding its training had, which
arrays it refuses to guess about, and what it notes of an image a grey model read as grey."""

import io
import pickle
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets
import torch
from PIL import Image

from mlpipeline_model import (
    ANSWER_COLUMNS,
    DECODING_VERSION,
    INPUT_NOTE_COLUMN,
    DecodingWarning,
    ImageClassifierModel,
    build_model,
)
from mlpipeline_model.pyfunc import TORCH_ARTIFACT

PHOTO = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"  # a colour photograph


def _grey_model() -> ImageClassifierModel:
    wrapper = ImageClassifierModel((32, 32), 1, ["a", "b"])
    wrapper.model = build_model("smallcnn", 1, 2, mean=[0.5], std=[0.2]).eval()
    return wrapper


def test_a_model_decoded_as_its_training_was_has_no_decoding_note():
    wrapper = pickle.loads(pickle.dumps(ImageClassifierModel((8, 8), 1, ["a", "b"])))
    assert wrapper.decoding_version == DECODING_VERSION and wrapper.decoding_note is None


def test_a_model_logged_before_versions_were_recorded_has_a_decoding_note():
    wrapper = ImageClassifierModel((8, 8), 1, ["a", "b"])
    del wrapper.__dict__["decoding_version"]  # as unpickled from a model logged before it
    note = pickle.loads(pickle.dumps(wrapper)).decoding_note
    assert "decoded by a version before 6 (not recorded)" in note
    assert f"these images were decoded by version {DECODING_VERSION}" in note


def test_the_decoding_note_names_the_files_whose_decoding_changed():
    wrapper = ImageClassifierModel((8, 8), 1, ["a", "b"], decoding_version=DECODING_VERSION - 1)
    note = wrapper.decoding_note  # a model of 8-bit PNGs can tell that nothing differs for it
    assert "(16-bit colour and grey+alpha PNGs are read at their full depth" in note
    assert note.endswith("if not, nothing differs")


def test_the_decoding_note_names_every_change_since_the_model_s_version():
    wrapper = ImageClassifierModel((8, 8), 1, ["a", "b"], decoding_version=5)
    note = wrapper.decoding_note
    assert "(16-bit images and DICOM files without a VOI window are stretched" in note
    assert "; 16-bit colour and grey+alpha PNGs are read at their full depth" in note


@pytest.mark.parametrize("channels", [3, 4])  # RGB or RGBA, as PyTorch holds one image
def test_one_channel_first_image_for_a_colour_model_is_refused_saying_how_to_send_it(channels):
    wrapper = ImageClassifierModel((32, 32), 3, ["a", "b"])
    wrapper.model = build_model("smallcnn", 3, 2, mean=[0.5] * 3, std=[0.2] * 3).eval()
    with pytest.raises(ValueError) as refused:
        wrapper.predict(None, np.zeros((channels, 32, 32), np.uint8))
    message = str(refused.value)
    assert f"got one {channels}×32×32 array, which reads as {channels} grey images" in message
    assert "one channel-first image (C×H×W" in message
    assert "send one image as 1×H×W×3 " in message and f"grey images as {channels}×H×W×1" in message
    # The advice works: RGBA drops its alpha (the arrays take 1 or 3 channels).
    image, advice = np.zeros((channels, 32, 32), np.uint8), "np.moveaxis(image[:3], 0, -1)[None]"
    if channels == 3:
        advice = "np.moveaxis(image, 0, -1)[None]"
    assert f"1×H×W×3 ({advice})" in message
    assert len(wrapper.predict(None, np.moveaxis(image[:3], 0, -1)[None])) == 1


def test_three_grey_images_for_a_grey_model_still_read_as_three():
    assert len(_grey_model().predict(None, np.zeros((3, 32, 32), np.uint8))) == 3


def test_a_grey_models_answer_notes_a_colour_file_it_read_as_grey():
    grey = io.BytesIO()
    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(grey, "PNG")
    table = _grey_model().predict(None, [PHOTO.read_bytes(), grey.getvalue()])
    first, second = table[INPUT_NOTE_COLUMN].tolist()
    assert "colour image read as grey" in first and second is None


def test_a_grey_models_answer_notes_a_colour_array_but_not_grey_stored_as_rgb():
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[..., 0] = 200  # red
    grey_rgb = np.full((32, 32, 3), 120, np.uint8)  # equal channels: grey stored as RGB
    table = _grey_model().predict(None, np.stack([colour, grey_rgb]))
    first, second = table[INPUT_NOTE_COLUMN].tolist()
    assert "colour image read as grey" in first and second is None
    plain = _grey_model().predict(None, np.zeros((2, 32, 32, 1), np.uint8))
    assert plain[INPUT_NOTE_COLUMN].tolist() == [None, None]


def test_a_colour_models_answer_has_no_input_note_column():
    wrapper = ImageClassifierModel((32, 32), 3, ["a", "b"])
    wrapper.model = build_model("smallcnn", 3, 2, mean=[0.5] * 3, std=[0.2] * 3).eval()
    assert INPUT_NOTE_COLUMN not in wrapper.predict(None, [PHOTO.read_bytes()]).columns


def test_dropping_the_answer_columns_leaves_the_probabilities():
    table = _grey_model().predict(None, np.zeros((2, 32, 32, 1), np.uint8))
    probs = table.drop(columns=list(ANSWER_COLUMNS), errors="ignore")
    assert list(probs.columns) == ["a", "b"]
    np.testing.assert_allclose(probs.to_numpy(float).sum(axis=1), 1.0)


@pytest.mark.parametrize("version", [DECODING_VERSION, DECODING_VERSION - 1])
def test_loading_a_model_of_another_decoding_version_warns_how_to_load_it(tmp_path, version):
    """As ``mlflow.pyfunc.load_model`` calls it: a process keeps the first code it imports."""
    torch.save(_grey_model().model, tmp_path / "module.pt")
    wrapper = ImageClassifierModel((32, 32), 1, ["a", "b"], decoding_version=version)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wrapper.load_context(
            types.SimpleNamespace(artifacts={TORCH_ARTIFACT: str(tmp_path / "module.pt")})
        )
    said = [str(w.message) for w in caught if issubclass(w.category, DecodingWarning)]
    if version == DECODING_VERSION:
        assert not said and wrapper.model is not None
    else:
        assert len(said) == 1 and said[0].startswith(wrapper.decoding_note)
        assert "load each model in a process of its own" in said[0]
