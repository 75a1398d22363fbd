"""The logged model is self-contained: it loads without the repository and predicts on images."""

import base64
import importlib.metadata
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from pathlib import Path

import mlflow
import mlflow.pytorch
import numpy as np
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from PIL import Image
from pydicom.data import get_testdata_file

from common import InvalidInput
from dataloader import load_dataset
from runs import (
    build_model,
    find_logged_model,
    load_classifier,
    load_model,
    model_info,
    servable_problem,
)
from tests.conftest import ROOT

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys, tempfile
    import mlflow.pyfunc, numpy as np
    with tempfile.TemporaryDirectory() as tmp:  # as README advises: predicts after removal
        model = mlflow.pyfunc.load_model(sys.argv[1], dst_path=tmp)
    files = [open(p, "rb").read() for p in sys.argv[2:]]
    by_bytes = model.predict(files)
    by_array = model.predict(np.zeros((2, 50, 40, 3), dtype=np.uint8))
    by_example = model.predict(model.input_example)  # a downstream service's first call
    code = sys.modules[type(model.unwrap_python_model()).__module__].__file__
    print(json.dumps({
        "columns": list(by_bytes.columns), "rows": by_bytes.to_dict("records"),
        "array_rows": len(by_array), "code": code,
        "example_columns": list(by_example.columns),
        "outputs": model.metadata.get_output_schema().input_names(),
        "repo_modules": sorted({"runs", "common", "dataloader"} & set(sys.modules)),
    }))
    """
)


def test_model_predicts_in_a_fresh_process_without_the_repository(trained_run, tmp_path):
    files = [
        *sorted((trained_run.data_dir / "test").rglob("*.png"))[:3],
        get_testdata_file("CT_small.dcm"),
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # TMPDIR: whatever else MLflow writes to a temporary folder lands in tmp_path.
    env.update(PYTHONPATH="", MLFLOW_TRACKING_URI=trained_run.tracking_uri, TMPDIR=str(tmp_path))
    uri = f"runs:/{trained_run.run_id}/model"
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, uri, *map(str, files)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    classes = sorted(p.name for p in (trained_run.data_dir / "train").iterdir())
    assert out["columns"] == [*classes, "predicted_class", "ood_score", "out_of_distribution"]
    assert out["rows"][-1]["out_of_distribution"] is True  # a CT slice to a colour photo model
    for row in out["rows"]:
        assert sum(row[c] for c in classes) == pytest.approx(1.0, abs=1e-5)
        assert row["predicted_class"] == max(classes, key=row.get)
    assert out["array_rows"] == 2
    assert out["outputs"] == out["example_columns"] == out["columns"]  # the MLmodel says them
    assert not out["code"].startswith(str(ROOT)), "the model's code came from the checkout"
    assert out["repo_modules"] == []


def test_prediction_on_file_bytes_equals_the_module_on_training_preprocessing(trained_run):
    mlflow.set_tracking_uri(trained_run.tracking_uri)
    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    module = load_model(trained_run.run_id, trained_run.tracking_uri)
    test = load_dataset(trained_run.data_dir, splits=("test",)).test
    blobs = [(trained_run.data_dir / f).read_bytes() for f in test.files[:5]]
    probs = served.predict(None, blobs)[served.class_names].to_numpy()
    x = torch.from_numpy(test.images[:5]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = torch.softmax(module(x), dim=1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-6)


def test_served_probabilities_are_the_evaluators_to_the_last_bit(trained_run):
    # A threshold is a validation probability; an image exactly at it must be decided alike
    # (float64 softmax in both; float32 convolutions agree bitwise for the same batches).
    from runs import Preprocessing, inference

    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    module = load_model(trained_run.run_id, trained_run.tracking_uri)
    test = load_dataset(trained_run.data_dir, splits=("test",)).test
    pp = Preprocessing(image_size=served.image_size, channels=served.channels,
                       class_names=served.class_names, mean=[0.0], std=[1.0])  # fmt: skip
    batches = inference.batches(test.images, pp, served.batch_size)  # the same batches
    evaluator = inference.predict(module, batches).numpy()
    np.testing.assert_array_equal(served.probabilities(test.images), evaluator)


def test_a_read_only_array_is_predicted_without_a_warning(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    images = load_dataset(trained_run.data_dir, splits=("test",)).test.images[:3].copy()
    expected = served.probabilities(images)
    images.flags.writeable = False  # as np.asarray(PIL image) gives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(served.probabilities(images), expected)


def test_pixels_scaled_to_0_1_are_refused_rather_than_read_as_black(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    images = load_dataset(trained_run.data_dir, splits=("test",)).test.images[:2]
    with pytest.raises(
        ValueError, match=r"whole pixel values 0–255 .* scale \[0, 1\] pixels by 255"
    ):
        served.predict(None, images.astype(np.float32) / 255)
    # whole numbers in another dtype are the same image
    np.testing.assert_array_equal(served.to_batch(images.astype(np.float64)), images)


def test_jpeg_dicom_and_other_sizes_are_converted_to_the_models_input(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((70, 90), 128, np.uint8)).save(jpeg, format="JPEG")
    with open(get_testdata_file("CT_small.dcm"), "rb") as f:
        dicom = f.read()
    batch = served.to_batch([jpeg.getvalue(), dicom])
    assert batch.shape == (2, 32, 32, 3) and batch.dtype == np.uint8
    assert len(served.predict(None, [jpeg.getvalue(), dicom])) == 2


def test_undecodable_bytes_name_their_position(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    good = (sorted((trained_run.data_dir / "test").rglob("*.png"))[0]).read_bytes()
    with pytest.raises(ValueError, match="not a PNG, JPEG or DICOM") as info:
        served.predict(None, [good, b"GIF89a not really"])
    assert info.value.index == 1


def test_base64_text_wrapped_in_lines_or_as_a_data_url_is_the_same_image(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    good = (sorted((trained_run.data_dir / "test").rglob("*.png"))[0]).read_bytes()
    plain = base64.b64encode(good).decode()
    wrapped = base64.encodebytes(good).decode()  # 76 characters a line, as GNU base64 writes
    url = "data:image/png;base64," + plain
    batch = served.to_batch([plain, wrapped, url])
    np.testing.assert_array_equal(batch[1], batch[0])
    np.testing.assert_array_equal(batch[2], batch[0])


def test_text_that_is_not_base64_says_what_it_starts_with(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    with pytest.raises(ValueError, match=r"base64-encoded PNG, JPEG or DICOM image \(.*'/tmp/x"):
        served.predict(None, ["/tmp/x.png"])


def test_an_unreadable_input_is_mlflows_invalid_parameter_error(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")
    good = (sorted((trained_run.data_dir / "test").rglob("*.png"))[0]).read_bytes()
    with pytest.raises(MlflowException, match="not a PNG, JPEG or DICOM") as info:
        served.predict(None, [good, b"GIF89a not really"])
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert info.value.message.startswith("input 1 (counted from 0): ")
    again = pickle.loads(pickle.dumps(info.value))  # e.g. back from a worker process
    assert isinstance(again, ValueError) and again.index == info.value.index


def test_a_thumbnail_is_refused_as_the_evaluator_refuses_such_data(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")  # 32×32 input
    tiny = io.BytesIO()
    Image.fromarray(np.full((2, 2), 128, np.uint8)).save(tiny, format="PNG")
    good = (sorted((trained_run.data_dir / "test").rglob("*.png"))[0]).read_bytes()
    with pytest.raises(
        ValueError, match=r"is 2×2 px \(height×width\); the model takes 32×32"
    ) as info:
        served.predict(None, [good, tiny.getvalue()])
    assert info.value.index == 1 and "send the original image, not a thumbnail" in str(info.value)
    with pytest.raises(ValueError, match="send a larger original, cropped to at most 4:1") as info:
        served.predict(None, np.zeros((1, 400, 7, 3), np.uint8))  # 7 px wide: a strip
    assert "thumbnail" not in str(info.value)
    assert len(served.predict(None, np.zeros((1, 8, 8, 3), np.uint8))) == 1  # 4× is fine


def test_one_image_without_its_batch_dimension_is_refused_saying_how_to_send_it(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")  # 32×32 input
    with pytest.raises(ValueError, match=r"read as 64 grey images of 64×3 px; .*1×H×W×C\)"):
        served.predict(None, np.zeros((64, 64, 3), np.uint8))


def test_a_strip_is_refused_as_the_dataloader_skips_it(trained_run):
    served = load_classifier(f"runs:/{trained_run.run_id}/model")  # 32×32 input
    with pytest.raises(ValueError, match=r"16×200 px would be squashed 12.5× .* crop it"):
        served.predict(None, np.zeros((1, 16, 200, 3), np.uint8))  # a 12.5:1 strip
    assert len(served.predict(None, np.zeros((1, 16, 64, 3), np.uint8))) == 1  # 4:1 is fine


def test_model_of_an_older_run_still_loads_but_is_not_servable(mlflow_server):
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("legacy-format")
    module = build_model("smallcnn", 3, 2).eval()
    with mlflow.start_run() as run:
        mlflow.pytorch.log_model(module, name="model", serialization_format="pickle",
                                 pip_requirements=["torch"])  # fmt: skip
    loaded = load_model(run.info.run_id, mlflow_server)
    assert loaded.target_layer is not None
    problem = servable_problem(model_info(f"runs:/{run.info.run_id}/model"))
    assert "logged before models carried their own code" in problem
    assert "python -m trainer --from-run RUN_ID retrains" in problem  # the way to serve it
    with pytest.raises(InvalidInput, match="cannot be served"):
        load_classifier(f"runs:/{run.info.run_id}/model")


def test_loading_leaves_no_download_behind(trained_run, tmp_path, monkeypatch):
    # MLflow's loaders download from the server into a new temporary folder per call and never
    # remove it: the evaluator and explainer load a model per job, the predictor per alias move.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    mlflow.set_tracking_uri(trained_run.tracking_uri)
    uri = f"runs:/{trained_run.run_id}/model"
    assert servable_problem(model_info(uri)) is None
    assert load_classifier(uri).model is not None
    assert load_model(trained_run.run_id, trained_run.tracking_uri).training is False
    assert sorted(p.name for p in scratch.iterdir()) == []
    assert [p for p in sys.path if p.startswith(str(scratch))] == []  # the code folder went too


FULL_DISK = textwrap.dedent(
    """
    import resource, sys
    import mlflow
    from common import InvalidInput, ServiceUnavailable
    from runs import load_classifier
    mlflow.set_tracking_uri(sys.argv[1])
    # a full disk as a process sees it: any file written past 64 KiB fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
    for uri in sys.argv[2:]:
        try:
            load_classifier(uri)
            print("loaded")
        except (InvalidInput, ServiceUnavailable) as exc:
            print(type(exc).__name__, exc)
    """
)


def test_a_full_disk_is_an_outage_not_a_run_without_a_model(trained_run):
    """MLflow's runs:/ repository says RESOURCE_DOES_NOT_EXIST for any failed download: a full
    disk read as "the run has no model", never retried, and the operator told to train again."""
    client = MlflowClient(trained_run.tracking_uri)
    logged = find_logged_model(client, client.get_run(trained_run.run_id))
    uris = [f"runs:/{trained_run.run_id}/model", f"models:/{logged.model_id}"]
    said = subprocess.run(
        [sys.executable, "-c", FULL_DISK, trained_run.tracking_uri, *uris],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    lines = said.stdout.splitlines()
    assert len(lines) == 2, said.stdout + said.stderr
    for uri, line in zip(uris, lines, strict=True):
        assert line.startswith(f"ServiceUnavailable the model at {uri} could not be downloaded")
        assert "free space there" in line and "not a problem of the run" in line


def test_a_model_folder_without_its_mlmodel_stays_the_runs_fault(mlflow_server, tmp_path):
    """Not an outage to retry for ever: files deleted from the artifact store, or a run's own
    ``model/`` folder that holds no model, are there to list but are no model."""
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("partial-model")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(weights), "model/data")
    for load in (model_info, load_classifier):
        with pytest.raises(InvalidInput, match="no model at"):
            load(f"runs:/{run.info.run_id}/model")


def test_legacy_model_loading_leaves_no_download_behind(mlflow_server, tmp_path, monkeypatch):
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("legacy-format")
    with mlflow.start_run() as run:
        module = build_model("smallcnn", 1, 2).eval()
        mlflow.pytorch.log_model(module, name="model", serialization_format="pickle",
                                 pip_requirements=["torch"])  # fmt: skip
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert load_model(run.info.run_id, mlflow_server).in_channels == 1
    assert sorted(p.name for p in scratch.iterdir()) == []


def test_model_info_reads_a_logged_model_uri(trained_run):
    mlflow.set_tracking_uri(trained_run.tracking_uri)
    by_run = model_info(f"runs:/{trained_run.run_id}/model")
    by_id = model_info(f"models:/{by_run.model_id}")
    assert by_id.model_id == by_run.model_id and servable_problem(by_id) is None


def test_the_model_requires_the_dicom_decoder_it_was_trained_with(trained_run, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    # a served model must decode the compressed DICOM (JPEG Lossless, JPEG-LS) training read
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mlflow.set_tracking_uri(trained_run.tracking_uri)
    path = mlflow.pyfunc.get_model_dependencies(f"runs:/{trained_run.run_id}/model")
    pinned = dict(line.split("==") for line in Path(path).read_text().split() if "==" in line)
    assert pinned["python-gdcm"] == importlib.metadata.version("python-gdcm")
    assert pinned["pydicom"] == importlib.metadata.version("pydicom")
    # and every package the loader imports, at the version of the module trained with
    modules = {"torch": "torch", "torchvision": "torchvision", "mlflow": "mlflow", "numpy": "numpy",
               "pandas": "pandas", "pillow": "PIL"}  # fmt: skip
    for name, module in modules.items():
        assert pinned[name] == importlib.import_module(module).__version__.split("+")[0], name


def test_loading_a_model_again_and_again_leaves_no_idle_download_threads(trained_run):
    """MLflow's artifact repositories start download threads that only the cyclic collector
    ends: a predictor gained 5 idle threads per alias move (soak audit)."""
    mlflow.set_tracking_uri(trained_run.tracking_uri)
    uri = f"runs:/{trained_run.run_id}/model"
    load_classifier(uri)  # warm: MLflow's own lasting threads, if any, start here
    before = threading.active_count()
    for _ in range(2):  # each left up to 8 threads
        load_classifier(uri)
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.1)  # an ended pool's threads leave at their next wake-up
    assert threading.active_count() <= before, [t.name for t in threading.enumerate()]
