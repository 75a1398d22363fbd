"""Data that does not fit the run's model is refused before evaluating, naming both sides; files
the loader skipped are reported (real evaluator over HTTP, real MLflow)."""

import json
import shutil

import mlflow
import numpy as np
import requests


def post(url: str, body: dict, wait: float = 0) -> requests.Response:
    return requests.post(f"{url}/evaluate", json=body, params={"wait": wait}, timeout=180)


def test_grey_two_class_npz_against_an_rgb_three_class_model_is_422(
    service, run_id, data_root, mlflow_server
):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 4, 4), dtype=np.uint8)  # 8× smaller than the model's
    labels = np.arange(12) % 2
    np.savez(data_root / "tiny-grey.npz", train_images=images, train_labels=labels,
             test_images=images, test_labels=labels)  # fmt: skip
    client = mlflow.MlflowClient(mlflow_server)
    before = client.get_run(run_id).data.metrics.get("eval_accuracy")
    response = post(service.url, {"run_id": run_id, "data_dir": "tiny-grey.npz"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "channels: the data has 1 (grey), the model takes 3 (RGB)" in detail
    assert "classes: the data has labels 0..1 (2 classes), the model 3 classes" in detail
    assert "image size: the data has images of 4×4 (first: 4×4 px is more than 4× smaller" in detail
    assert client.get_run(run_id).data.metrics.get("eval_accuracy") == before


def test_file_that_is_not_a_zip_named_npz_is_422_saying_what_it_is(service, run_id, data_root):
    (data_root / "fake.npz").write_text("<html>not found</html>")
    response = post(service.url, {"run_id": run_id, "data_dir": "fake.npz"})
    assert response.status_code == 422
    assert "is not a .npz file" in response.json()["detail"]
    assert "pickle" not in response.json()["detail"]


def test_skipped_files_are_counted_in_the_result_and_metrics_json(
    service, run_id, demo_data, data_root, mlflow_server, tmp_path
):
    copy = data_root / "with-corrupt"
    if not copy.exists():
        shutil.copytree(demo_data, copy, ignore=shutil.ignore_patterns(".cache"))
        (copy / "test" / "nevus" / "corrupt.png").write_bytes(b"\x89PNG not really")
    response = post(service.url, {"run_id": run_id, "data_dir": "with-corrupt"}, wait=120)
    job = response.json()
    assert job["status"] == "succeeded", job["error"]
    skipped = job["result"]["skipped"]
    assert skipped["count"] == 1
    assert skipped["files"][0]["file"] == "test/nevus/corrupt.png"
    client = mlflow.MlflowClient(mlflow_server)
    local = client.download_artifacts(
        run_id, f"{job['result']['artifact_path']}/metrics.json", str(tmp_path)
    )
    with open(local) as f:
        assert json.load(f)["skipped"]["count"] == 1
