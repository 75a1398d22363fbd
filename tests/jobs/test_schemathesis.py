"""Schemathesis (``--checks all``) against the real evaluator and explainer apps: no server
error and no answer that the OpenAPI schema does not document.

Both services run with a token (so ``ignored_auth`` is checked too), a real MLflow server and
the embedded store; examples are bounded so that the run stays fast.
"""

import subprocess
import sys

import pytest

from common import Settings
from tests.conftest import LiveServer

TOKEN = "schemathesis-test-token-0123456789abcdef"


def schemathesis(url: str, tmp_path) -> subprocess.CompletedProcess:
    argv = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
        "--checks", "all", "--header", f"Authorization: Bearer {TOKEN}",
        "--max-examples", "15", "--seed", "1", "--phases", "examples,coverage,fuzzing",
        "--request-timeout", "30", "--no-color", "--continue-on-failure",
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.mark.parametrize("service", ["evaluator", "explainer"])
def test_schemathesis_finds_no_server_error_or_undocumented_answer(
    service, mlflow_server, data_root, tmp_path
):
    if service == "evaluator":
        from evaluator.app import create_app
    else:
        from explainer.app import create_app
    settings = Settings(
        _env_file=None, mlflow_tracking_uri=mlflow_server, data_dir=data_root,
        store_dir=tmp_path / "store", mongo_uri=None, pipeline_api_token=TOKEN,
    )  # fmt: skip
    with LiveServer(create_app(settings)) as live:
        done = schemathesis(live.url, tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
