"""`python -m dashboard.choose`: what the command prints, its refusals and warnings.

The tests that count the lines written run the command as a process (only a process shows what
else would reach its stderr: Python's warnings, other loggers); the others call its ``main`` in
this process, which prints the same lines (a process costs ~4 s of CPU importing torch and
MLflow)."""

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from common import Settings, get_settings
from dashboard.choose import choose_run, main
from tests.conftest import ROOT, LiveServer
from tests.dashboard.conftest import leak


def _env(settings: Settings, **more: str) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "STORE_DIR": str(settings.store_dir),
        "RUN_ID_FILE": str(settings.run_id_file),
        "MODEL_NAME": settings.model_name,
        **more,
    }


def _process(settings: Settings, *args: str, **more: str) -> subprocess.CompletedProcess:
    """The command run as a process."""
    env = {**os.environ, **_env(settings, **more)}
    env.pop("MONGO_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "dashboard.choose", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


class Done(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch, capsys) -> Iterator[Callable[..., Done]]:
    """The command's ``main`` in this process, with the environment and working folder a
    process of it would get."""
    mlflow_level = logging.getLogger("mlflow").level  # main quiets MLflow's logger

    def run(settings: Settings, *args: str, **more: str) -> Done:
        for name, value in _env(settings, **more).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("MONGO_URI", raising=False)
        monkeypatch.chdir(ROOT)
        get_settings.cache_clear()  # main reads the process settings, as the command does
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Done(code, out, err)

    yield run
    logging.getLogger("mlflow").setLevel(mlflow_level)
    monkeypatch.undo()
    get_settings.cache_clear()  # read again from the environment restored


def test_cli_prints_the_registered_version(dashboard_runs, settings, store):
    result = _process(settings, dashboard_runs["pipeline"], "--reason", "from the CLI",
                  "--by", "Auditor Alice")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"
    record = store.recent()[0]
    assert record["reason"] == "from the CLI"
    # a name nobody authenticated: marked, with the account that typed it
    assert record["selected_by"].startswith("Auditor Alice (typed by OS user ")


def test_cli_says_that_the_predictor_refused_its_token(dashboard_runs, settings, cli):
    """Without the predictor's token the choice cannot compare with what it serves: said in a
    warning line, not passed over (the choice itself goes on: the alias is checked)."""
    refusing = FastAPI()

    @refusing.get("/ready")
    def ready() -> JSONResponse:
        return JSONResponse({"detail": "missing bearer token"}, status_code=401)

    env = {"PIPELINE_API_TOKEN": ""}
    with LiveServer(refusing) as predictor:
        result = cli(settings, dashboard_runs["pipeline"], "--reason", "x",
                      PREDICTOR_URL=predictor.url, **env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        f"warning: the predictor at {predictor.url} refused the request (HTTP 401), so "
        "what it serves was not compared with this run: set PIPELINE_API_TOKEN"
    ) in result.stderr


def test_cli_refusal_is_one_line_and_exit_code_2(dashboard_runs, settings):
    result = _process(settings, dashboard_runs["bare"], "--reason", "x")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "has not been evaluated" in result.stderr


def test_cli_choosing_the_chosen_run_again_says_its_tags_were_updated(
    dashboard_runs, settings, cli
):
    choose_run(dashboard_runs["pipeline"], "first", settings)
    result = cli(settings, dashboard_runs["pipeline"], "--reason", "again")
    assert result.returncode == 0, result.stderr
    assert "was already" in result.stderr
    assert "(alias champion); its tags now describe this choice;" in result.stderr


def test_cli_refuses_a_leaked_run_in_one_line_without_yes_leakage(fresh_run, settings):
    leak(settings.mlflow_tracking_uri, fresh_run)
    result = _process(settings, fresh_run, "--reason", "x", "--yes-unevaluated")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "--yes-leakage" in result.stderr
    result = _process(settings, fresh_run, "--reason", "x", "--yes-unevaluated", "--yes-leakage")
    assert result.returncode == 0, result.stderr
    assert "warning: possible leakage: 2 images" in result.stderr


def test_figures_from_another_data_folder_are_marked(
    fresh_run, settings, tiny_demo_data, tmp_path, cli
):
    import shutil

    from evaluator import evaluate_run

    copy = shutil.copytree(tiny_demo_data, tmp_path / "elsewhere" / "data")
    evaluate_run(fresh_run, settings.mlflow_tracking_uri, data_dir=copy, batch_size=32)
    result = cli(settings, fresh_run, "--reason", "other data")
    assert result.returncode == 0, result.stderr
    assert f"warning: the evaluation used the test split of {copy}" in result.stderr
    assert "not the run's own data" in result.stderr


def test_an_unwritable_run_id_file_is_one_line_saying_the_alias_moved(
    dashboard_runs, settings, tmp_path
):
    (tmp_path / "a-file").write_text("not a folder")
    blocked = settings.model_copy(update={"run_id_file": tmp_path / "a-file" / "run_id.txt"})
    result = _process(blocked, dashboard_runs["pipeline"], "--reason", "x")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "version 1 is now 'champion'" in result.stderr and "RUN_ID_FILE" in result.stderr


def test_a_by_name_over_200_characters_is_refused_before_its_mark_is_added(
    dashboard_runs, settings, cli
):
    with pytest.raises(SystemExit) as stop:
        cli(settings, dashboard_runs["pipeline"], "--reason", "x", "--by", "n" * 201)
    assert stop.value.code == 2
    accepted = cli(settings, dashboard_runs["pipeline"], "--reason", "x", "--by", "n" * 200)
    assert accepted.returncode == 0, accepted.stderr  # 200 and the " (typed by OS user U)" mark
