"""The modality guard of the logged model: a DICOM input of another modality than its training
images, one that is no image, or a multi-frame one is refused; PNG/JPEG and older models are
not affected. Real DICOM files: pydicom's bundled test files."""

import io
import pickle
from pathlib import Path

import numpy as np
import pydicom
import pytest
from mlflow.exceptions import MlflowException
from PIL import Image
from pydicom.data import get_testdata_file

from mlpipeline_model import ImageClassifierModel, build_model, conform, parse_modalities


def _model(modalities: list[str] | None, channels: int = 1) -> ImageClassifierModel:
    """A small untrained classifier as the trainer logs it, of ``modalities``."""
    wrapper = ImageClassifierModel((32, 32), channels, ["benign", "malignant"],
                                   modalities=modalities)  # fmt: skip
    wrapper = pickle.loads(pickle.dumps(wrapper))  # as loaded from the logged model
    mean, std = [0.5] * channels, [0.2] * channels
    wrapper.model = build_model("smallcnn", channels, 2, mean=mean, std=std).eval()
    return wrapper


def _file(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


def _legacy() -> ImageClassifierModel:
    """A model pickled before modalities were recorded: no ``modalities`` attribute."""
    wrapper = _model(None)
    del wrapper.__dict__["modalities"]
    return wrapper


def test_an_ultrasound_model_refuses_a_ct_image_naming_both_modalities():
    with pytest.raises(MlflowException) as refused:
        _model(["US"]).predict(None, [_file("CT_small.dcm")])
    assert (
        "input 0 (counted from 0): the DICOM file's Modality is CT; this model was trained on "
        "US images only"
    ) in str(refused.value)


def test_an_ultrasound_model_refuses_an_mr_image():
    with pytest.raises(ValueError, match=r"Modality is MR; this model was trained on US images"):
        _model(["US"]).decode(_file("MR_small.dcm"))


def test_an_ultrasound_model_classifies_an_ultrasound_image():
    table = _model(["US"], channels=3).predict(None, [_file("examples_rgb_color.dcm")])
    assert len(table) == 1 and table["predicted_class"][0] in ("benign", "malignant")


def test_a_model_of_two_modalities_takes_either():
    model = _model(["CT", "MR"])
    assert len(model.predict(None, [_file("CT_small.dcm"), _file("MR_small.dcm")])) == 2


def test_an_rt_dose_grid_is_refused_as_not_an_image():
    with pytest.raises(ValueError) as refused:
        _model(["XC"], channels=3).decode(_file("rtdose.dcm"))  # 15 frames of dose values
    assert str(refused.value) == (
        "the DICOM file (RT Dose Storage, Modality RTDOSE) is not an image this model can read; "
        "send the image itself"
    )


def test_a_single_frame_rt_dose_grid_is_refused_by_its_sop_class():
    with pytest.raises(ValueError, match=r"^the DICOM file \(RT Dose Storage, Modality RTDOSE\)"):
        _model(["RTDOSE"]).decode(_file("rtdose_1frame.dcm"))


def test_a_segmentation_is_refused_as_not_an_image():
    with pytest.raises(ValueError, match=r"\(Segmentation Storage, Modality SEG\) is not an im"):
        _model(["CT"]).decode(_file("liver_1frame.dcm"))


def test_a_structured_report_is_refused_as_not_an_image_even_without_known_modalities():
    with pytest.raises(ValueError, match=r"\(Basic Text SR Storage, Modality SR\) is not an im"):
        _model(None).decode(_file("reportsi.dcm"))


def test_an_image_sop_class_without_pixel_data_is_refused_as_not_an_image():
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(ValueError, match=r"\(CT Image Storage, without pixel data, Modality CT\)"):
        _model(["CT"]).decode(buffer.getvalue())


def test_a_multi_frame_ultrasound_loop_is_refused_saying_to_send_one_frame():
    with pytest.raises(ValueError) as refused:
        _model(["US"], channels=3).decode(_file("examples_ybr_color.dcm"))
    assert str(refused.value) == (
        "the DICOM file holds 30 frames (a cine loop, a series or a volume); this model "
        "classifies single images: send the frame to classify as its own single-frame file"
    )


def test_a_model_trained_on_cine_loops_classifies_a_loop_by_its_first_frame():
    wrapper = ImageClassifierModel((32, 32), 3, ["benign", "malignant"], modalities=["US"],
                                   multi_frame=True)  # fmt: skip
    wrapper = pickle.loads(pickle.dumps(wrapper))  # as loaded from the logged model
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    first = ds.pixel_array[0]  # pydicom gives RGB
    assert np.array_equal(wrapper.decode(_file("examples_ybr_color.dcm")),
                          conform(first, (32, 32), 3))  # fmt: skip


def test_a_dicom_without_modality_is_refused_by_a_model_that_knows_its_modality():
    with pytest.raises(ValueError, match=r"^the DICOM file has no Modality; this model was tra"):
        _model(["OT"]).decode(_file("JPEGLSNearLossless_08.dcm"))


def test_a_model_without_recorded_modalities_classifies_any_modality():
    assert len(_model(None).predict(None, [_file("CT_small.dcm")])) == 1


def test_a_model_without_recorded_modalities_says_so():
    assert _model(None).modality_note.startswith("the model records no modality")


def test_a_model_that_knows_its_modalities_has_no_modality_note():
    assert _model(["US"]).modality_note is None


def test_a_png_reaches_a_model_of_a_dicom_modality_unchanged():
    png = io.BytesIO()
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(png, format="PNG")
    assert len(_model(["US"]).predict(None, [png.getvalue()])) == 1


def test_a_model_logged_before_modalities_were_recorded_classifies_every_dicom_as_before():
    model = _legacy()
    frames = pydicom.dcmread(get_testdata_file("rtdose.dcm")).pixel_array
    assert frames.ndim == 3  # a dose grid of 15 frames: the first one is read, as before
    for name in ("CT_small.dcm", "rtdose.dcm"):
        assert model.decode(_file(name)).shape == (32, 32, 1)


def test_a_model_logged_before_modalities_were_recorded_says_so():
    assert "logged before models recorded their modality" in _legacy().modality_note


def test_recorded_modalities_are_upper_case_sorted_and_unique():
    assert _model(["us", "CT", "US "]).modalities == ["CT", "US"]


def test_declared_modality_codes_are_normalised():
    assert parse_modalities(" us,CT ,us") == ["CT", "US"]


def test_a_declared_code_that_is_no_dicom_modality_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"^UL is not a DICOM Modality code; use codes such as US"):
        parse_modalities("US,UL")
