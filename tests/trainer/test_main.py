import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _trainer(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_prints_the_run_id_as_the_last_line(trainer_argv, mlflow_server):
    result = _trainer(*trainer_argv("--epochs", "1"))
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip().splitlines()[-1]
    assert MlflowClient(mlflow_server).get_run(run_id).info.status == "FINISHED"


def test_unreachable_mlflow_exits_2_with_one_clear_line(tmp_path, tiny_data, unreachable_uri):
    result = _trainer(
        "--data-dir", str(tiny_data), "--experiment", "x", "--tracking-uri", unreachable_uri,
        "--checkpoint-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: MLflow tracking server at")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_data_folder_exits_2_naming_it(tmp_path, mlflow_server):
    missing = tmp_path / "absent"
    result = _trainer("--data-dir", str(missing), "--tracking-uri", mlflow_server,
                      "--checkpoint-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 2
    assert str(missing) in result.stderr and "Traceback" not in result.stderr
