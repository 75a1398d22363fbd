"""``python -m predictor FILE...``: the chosen model's answer without the service."""

import json
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from common import get_settings
from dashboard.choose import choose_run
from predictor.__main__ import _line, main
from predictor.app import create_app
from runs import read_served
from tests.conftest import ROOT, LiveServer
from tests.predictor.conftest import move_alias_by_hand, serve_three_classes


@pytest.fixture
def cli_env(settings, monkeypatch):
    """The environment of ``settings`` (what the CLI reads)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("MODEL_NAME", settings.model_name)
    monkeypatch.delenv("MODEL_ALIAS", raising=False)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_prints_each_file_with_the_chosen_version(cli_env, served_runs, demo_data, capsys):
    choose_run(served_runs[0], "serve it", cli_env, allow_unevaluated=True)
    images = sorted((demo_data / "test").rglob("*.png"))[:2]
    assert main([*map(str, images), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["version"], answer["run_id"]) == ("1", served_runs[0])
    assert [p["file"] for p in answer["predictions"]] == list(map(str, images))  # as given
    assert main([str(images[0])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{cli_env.model_name} version 1 (run {served_runs[0]}")
    assert lines[1].startswith(f"{images[0]}: {answer['predictions'][0]['predicted_class']}")


def test_without_a_chosen_model_says_how_to_choose_in_one_line(cli_env, demo_data):
    image = sorted((demo_data / "test").rglob("*.png"))[0]
    env = {**os.environ, "MLFLOW_TRACKING_URI": cli_env.mlflow_tracking_uri,
           "MODEL_NAME": cli_env.model_name}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "predictor", str(image)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "python -m dashboard.choose" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # not also the log's warning


def test_a_missing_file_is_named(cli_env, tmp_path, capsys):
    assert main([str(tmp_path / "nope.png")]) == 2
    assert f"cannot read {tmp_path / 'nope.png'}" in capsys.readouterr().err


def test_a_line_leads_with_the_decision_when_a_threshold_decides():
    answer = {"file": "x.png", "probabilities": {"a": 0.7, "b": 0.3}, "predicted_class": "a"}
    assert _line({**answer, "decision": "b"}) == (
        "x.png: b (by the threshold; argmax a; a 0.700, b 0.300)"
    )
    assert _line({**answer, "decision": None}) == "x.png: a (a 0.700, b 0.300)"


def test_a_line_leads_with_the_flag_of_an_image_unlike_the_training_images():
    answer = {"file": "ct.dcm", "predicted_class": "a", "decision": None,
              "probabilities": {"a": 0.8, "b": 0.2}, "ood_score": 1.219,
              "out_of_distribution": True}  # fmt: skip
    assert _line(answer).startswith("ct.dcm: OUT OF DISTRIBUTION (ood_score 1.22 > 1: ")
    assert "do not rely on this answer) a (a 0.800" in _line(answer)


def test_the_command_records_nothing_as_served(cli_env, served_runs, demo_data):
    choose_run(served_runs[0], "serve it", cli_env, allow_unevaluated=True)
    assert main([str(sorted((demo_data / "test").rglob("*.png"))[0])]) == 0
    model = MlflowClient(cli_env.mlflow_tracking_uri).get_registered_model(cli_env.model_name)
    assert read_served(model.tags, cli_env.model_alias) is None  # only a service serves


def test_a_version_of_other_classes_moved_by_hand_is_not_used_and_said(
    cli_env, served_runs, other_classes_run, demo_data, capsys
):
    with LiveServer(create_app(cli_env)) as service:  # serves version 1: recorded
        serve_three_classes(service.url, cli_env, served_runs)
    image = str(sorted((demo_data / "test").rglob("*.png"))[0])
    move_alias_by_hand(cli_env, other_classes_run)
    capsys.readouterr()
    assert main([image]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{cli_env.model_name} version 1 ")
    assert "warning: the alias no longer names the served version 1: " in err
    assert "which changes what clients of version 1 receive (classes" in err


def test_a_line_ends_with_the_note_of_a_colour_image_read_as_grey():
    answer = {"file": "derm.jpg", "predicted_class": "a", "decision": None,
              "probabilities": {"a": 0.8, "b": 0.2},
              "input_note": "colour image read as grey"}  # fmt: skip
    assert _line(answer) == "derm.jpg: a (a 0.800, b 0.200) [colour image read as grey]"
