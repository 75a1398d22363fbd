"""The logged model carries the modalities of its training images (MLmodel metadata) and refuses
DICOM inputs of others wherever it is loaded: the predictor's loader and any MLflow client."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest
from pydicom.data import get_testdata_file

from mlpipeline_model import DECODING_VERSION
from runs import Preprocessing, build_model, load_classifier, log_classifier, model_info

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys, tempfile
    import mlflow.pyfunc
    with tempfile.TemporaryDirectory() as tmp:
        model = mlflow.pyfunc.load_model(sys.argv[1], dst_path=tmp)
    answers = {}
    for path in sys.argv[2:]:
        try:
            answers[path] = str(len(model.predict([open(path, "rb").read()])))
        except Exception as exc:
            answers[path] = str(exc)
    print(json.dumps(answers))
    """
)


def _log(modalities: list[str] | None) -> str:
    """A small untrained grey model of 32 px logged as the trainer logs it; its model URI."""
    pp = Preprocessing(image_size=(32, 32), channels=1, class_names=["benign", "malignant"],
                       mean=[0.5], std=[0.2], decoding_version=DECODING_VERSION,
                       modalities=modalities)  # fmt: skip
    module = build_model("smallcnn", 1, 2, pp.mean, pp.std).eval()
    with mlflow.start_run() as run:
        log_classifier(module, pp, "model")
    return f"runs:/{run.info.run_id}/model"


@pytest.fixture(scope="module")
def logged(mlflow_server) -> dict[str, str]:
    """Model URIs: an ultrasound model (``"US"``) and one that records no modality (``None``)."""
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("modality")
    return {"US": _log(["US"]), None: _log(None)}


def test_the_model_s_metadata_records_the_modalities_it_was_trained_on(logged):
    assert model_info(logged["US"]).metadata["modalities"] == ["US"]


def test_a_model_of_unknown_modality_records_none(logged):
    metadata = model_info(logged[None]).metadata
    assert "modalities" in metadata and metadata["modalities"] is None


def test_the_loaded_model_refuses_an_image_of_another_modality(logged):
    served = load_classifier(logged["US"])
    with pytest.raises(ValueError, match=r"Modality is CT; this model was trained on US images"):
        served.decode(Path(get_testdata_file("CT_small.dcm")).read_bytes())


def test_a_loaded_model_of_unknown_modality_says_so(logged):
    assert load_classifier(logged[None]).modality_note.startswith("the model records no modality")


def test_any_mlflow_client_gets_the_refusals_from_the_model_s_own_code(logged, tmp_path):
    names = ("CT_small.dcm", "rtdose.dcm", "examples_palette.dcm")  # CT, RT dose, ultrasound
    files = [get_testdata_file(name) for name in names]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH="", MLFLOW_TRACKING_URI=mlflow.get_tracking_uri(), TMPDIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, logged["US"], *files],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ct, dose, ultrasound = json.loads(result.stdout.strip().splitlines()[-1]).values()
    assert "the DICOM file's Modality is CT; this model was trained on US images only" in ct
    assert "(RT Dose Storage, Modality RTDOSE) is not an image this model can read" in dose
    assert ultrasound == "1"
