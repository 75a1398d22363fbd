"""The chosen model also serves with MLflow's own scoring server, outside the repository."""

import base64
import os
import shutil
import sys
from pathlib import Path

import requests

from dashboard.choose import choose_run
from tests.conftest import free_port, serving


def test_mlflow_models_serve_answers_for_the_alias(settings, served_runs, demo_data, tmp_path):
    choose_run(served_runs[0], "serve with mlflow", settings, allow_unevaluated=True)
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs `uvicorn` from PATH
    mlflow_cli = shutil.which("mlflow", path=bin_dir)
    argv = [mlflow_cli, "models", "serve", "-m", f"models:/{settings.model_name}@champion",
            "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local"]  # fmt: skip
    # TMPDIR: MLflow downloads the model into a temporary folder that it leaves behind.
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "PYTHONPATH": "",
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "TMPDIR": str(tmp_path)}  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    image = sorted((demo_data / "test").rglob("*.png"))[0].read_bytes()
    with serving(argv, url + "/ping", tmp_path / "serve.log", cwd=tmp_path, env=env):
        by_bytes = requests.post(f"{url}/invocations", timeout=60, json={
            "dataframe_records": [{"image": base64.b64encode(image).decode()}]
        })  # fmt: skip
        by_array = requests.post(f"{url}/invocations", timeout=60, json={
            "inputs": [[[[0, 0, 0]] * 32] * 32]
        })  # fmt: skip
        by_text = requests.post(f"{url}/invocations", timeout=60, json={
            "inputs": [base64.b64encode(image).decode()]  # MLflow makes it a numpy str array
        })  # fmt: skip
        wrapped = requests.post(f"{url}/invocations", timeout=60, json={
            "inputs": [base64.encodebytes(image).decode()]  # in lines, as GNU base64 writes
        })  # fmt: skip
        scaled = requests.post(f"{url}/invocations", timeout=60, json={
            "inputs": [[[[0.5, 0.5, 0.5]] * 32] * 32]  # [0, 1] pixels: refused, not black
        })  # fmt: skip
    assert by_bytes.status_code == 200, by_bytes.text
    [row] = by_bytes.json()["predictions"]
    classes = sorted(p.name for p in (demo_data / "train").iterdir())
    assert set(row) == {*classes, "predicted_class"}
    assert abs(sum(row[c] for c in classes) - 1) < 1e-5
    assert by_array.status_code == 200 and len(by_array.json()["predictions"]) == 1
    assert by_text.status_code == 200, by_text.text
    assert by_text.json()["predictions"] == [row]
    assert wrapped.status_code == 200, wrapped.text
    assert wrapped.json()["predictions"] == [row]
    assert scaled.status_code == 400, scaled.text
    error = scaled.json()  # the reason as MLflow's invalid parameter, not a traceback
    assert error["error_code"] == "INVALID_PARAMETER_VALUE" and "stack_trace" not in error
    assert "whole pixel values 0–255" in error["message"]
