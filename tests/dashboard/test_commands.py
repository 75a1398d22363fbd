"""The command lines the dashboard shows (``dashboard.commands``): pasted into a shell on the
dashboard's machine they reach the dashboard's tracking server and its data."""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from common import Settings
from dashboard.commands import ROOT, cli_command, interpreter
from tests.dashboard.conftest import _pipeline_run, open_page


def test_default_settings_add_nothing_before_readmes_command(monkeypatch):
    monkeypatch.chdir(ROOT)
    settings = Settings(mlflow_tracking_uri="http://127.0.0.1:5000", data_dir=Path("data"))
    assert cli_command(settings, "evaluator", "abc") == (
        f"{interpreter()} -m evaluator --run-id abc"
    )


def test_other_settings_come_first_quoted_and_absolute_without_credentials(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the dashboard's own working directory, not the project's
    settings = Settings(mlflow_tracking_uri="https://ann:pw@host:5100", data_dir=Path("my data"))
    command = cli_command(settings, "explainer", "r1", "--n-samples", "8")
    data = tmp_path.resolve() / "my data"
    assert command == (
        f"MLFLOW_TRACKING_URI='https://***@host:5100' DATA_DIR='{data}' "
        f"{interpreter()} -m explainer --run-id r1 --n-samples 8"
    )
    assert "pw" not in command and "ann" not in command


def test_the_interpreter_is_readmes_in_the_projects_virtualenv_else_python():
    assert interpreter(str(ROOT / ".venv")) == ".venv/bin/python"
    assert interpreter("/opt/venv") == "python"


def test_the_evaluation_tabs_command_evaluates_the_run_when_pasted_into_a_shell(
    page_env, mlflow_server, tiny_demo_data, tmp_path, monkeypatch
):
    # The run's data_dir is recorded relative to DATA_DIR, a folder elsewhere than the project.
    root = tmp_path / "elsewhere"
    shutil.copytree(tiny_demo_data, root / "cli-commands-data")
    monkeypatch.chdir(root)
    mlflow.set_tracking_uri(mlflow_server)
    experiment = mlflow.set_experiment(f"cli-commands-{time.time_ns()}").experiment_id
    run_id = _pipeline_run(mlflow_server, Path("cli-commands-data"), "cli-commands")
    assert MlflowClient(mlflow_server).get_run(run_id).data.params["data_dir"] == (
        "cli-commands-data"
    )
    monkeypatch.chdir(page_env)
    monkeypatch.setenv("DATA_DIR", str(root))
    at = open_page(run_id, "Evaluation", experiment_id=experiment)
    assert not at.exception
    [hint] = [i.value for i in at.info if "has no evaluation yet" in i.value]
    command = re.findall(r"`([^`]+)`", hint)[-1]
    assert f"-m evaluator --run-id {run_id}" in command
    # a shell of the dashboard's machine in the project's folder: no settings, the venv on PATH
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert "unreachable" not in done.stderr and "does not exist" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"test images from {root.resolve() / 'cli-commands-data'}" in done.stdout
