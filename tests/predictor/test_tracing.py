"""Every ``POST /predict`` answer names the model version that answered and the request's id
(``X-Model-Name``, ``X-Model-Version``, ``X-Request-ID``), and leaves one log line without patient
data (``predictor.tracing``)."""

import logging
import re

import pytest
import requests

from dashboard.choose import choose_run
from predictor import tracing
from predictor.app import create_app
from tests.conftest import LiveServer
from tests.predictor.conftest import AUTH, post_images, wait_ready

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def serving(predictor, settings, served_runs) -> str:
    """The predictor's URL once it serves version 1."""
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    return predictor


@pytest.fixture
def offline(settings, unreachable_uri):
    """A predictor without MLflow: it never loads a model."""
    alone = settings.model_copy(update={"mlflow_tracking_uri": unreachable_uri})
    with LiveServer(create_app(alone)) as server:
        yield server.url


def test_a_prediction_names_the_version_that_computed_it(serving, settings, demo_data):
    r = post_images(serving, sorted((demo_data / "test").rglob("*.png"))[:1])
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Name"] == settings.model_name == r.json()["model_name"]
    assert r.headers["X-Model-Version"] == "1" == r.json()["version"]


def test_an_error_answer_names_the_served_version(serving, settings, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    r = post_images(serving, [bad])
    assert r.status_code == 422
    assert (r.headers["X-Model-Name"], r.headers["X-Model-Version"]) == (settings.model_name, "1")


def test_without_a_model_the_headers_say_none_is_loaded(offline, settings):
    r = requests.post(f"{offline}/predict", files=[("files", ("a.png", b"x"))], headers=AUTH,
                      timeout=30)  # fmt: skip
    assert r.status_code == 503, r.text
    model = (r.headers["X-Model-Name"], r.headers["X-Model-Version"])
    assert model == (settings.model_name, "none")


def test_a_401_names_no_model(offline):
    r = requests.post(f"{offline}/predict", headers={"X-Request-ID": "abc-1"}, timeout=30)
    assert r.status_code == 401
    assert r.headers["X-Request-ID"] == "abc-1"  # traced, but tells no stranger what is served
    assert "X-Model-Name" not in r.headers and "X-Model-Version" not in r.headers


def test_a_request_id_sent_is_echoed(offline):
    sent = "0f8e-trace:42/a_b.c=+@"
    r = requests.post(f"{offline}/predict", headers={**AUTH, "X-Request-ID": sent}, timeout=30)
    assert r.headers["X-Request-ID"] == sent


@pytest.mark.parametrize(
    "sent", [None, "", "has space", "<script>", "x" * 129, "é"], ids=lambda s: repr(s)[:12]
)
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_generated_one(offline, sent):
    headers = AUTH if sent is None else {**AUTH, "X-Request-ID": sent}
    r = requests.post(f"{offline}/predict", headers=headers, timeout=30)
    assert GENERATED.fullmatch(r.headers["X-Request-ID"]), r.headers["X-Request-ID"]


def test_each_request_logs_one_line_without_file_names(serving, settings, demo_data, tmp_path,
                                                        caplog):  # fmt: skip
    image = sorted((demo_data / "test").rglob("*.png"))[0]
    named = tmp_path / "Jane-Doe-1957-03-02.png"  # patient data in a file name
    named.write_bytes(image.read_bytes())
    with caplog.at_level(logging.INFO, logger="predictor"):
        r = requests.post(
            f"{serving}/predict",
            files=[("files", (named.name, named.read_bytes(), "image/png"))] * 2,
            headers={**AUTH, "X-Request-ID": "trace-7"},
            timeout=60,
        )
    assert r.status_code == 200
    lines = [m for m in caplog.messages if "trace-7" in m]
    assert len(lines) == 1, caplog.messages
    assert re.fullmatch(
        rf"POST /predict request_id=trace-7 status=200 model={settings.model_name} version=1 "
        r"images=2 latency_ms=\d+\.\d",
        lines[0],
    ), lines[0]
    assert "Jane" not in caplog.text


def test_a_refused_request_is_logged_with_its_status(offline, settings, caplog):
    with caplog.at_level(logging.INFO, logger="predictor"):
        requests.post(f"{offline}/predict", headers={**AUTH, "X-Request-ID": "r-503"},
                      files=[("files", ("a.png", b"x"))], timeout=30)  # fmt: skip
    [record] = [r for r in caplog.records if "r-503" in r.getMessage()]
    assert f"status=503 model={settings.model_name} version=none images=1 " in record.getMessage()
    assert record.levelname == "ERROR"  # failed by the service: what an operator alerts on


def test_a_bad_request_is_a_warning_line(offline, caplog):
    with caplog.at_level(logging.INFO, logger="predictor"):
        requests.post(f"{offline}/predict", headers={**AUTH, "X-Request-ID": "r-4xx"},
                      timeout=30)  # fmt: skip
    [record] = [r for r in caplog.records if "r-4xx" in r.getMessage()]
    assert "status=415" in record.getMessage() and record.levelname == "WARNING"  # not multipart


def test_a_problem_each_look_finds_is_logged_once_then_after_a_while(monkeypatch, caplog):
    logger = logging.getLogger("predictor.test-repeats")
    lines = tracing.Repeats(logger)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for _ in range(3):  # three looks, each finding the same two problems
            lines.next_look()
            lines.warning("could not read %s", "the record")
            lines.warning("serving %s: %s", "m", "down")
        monkeypatch.setattr(tracing, "REPEAT_S", 0.0)
        lines.next_look()
        lines.warning("serving %s: %s", "m", "down")  # still there after REPEAT_S
    assert caplog.messages == ["could not read the record", "serving m: down", "serving m: down"]
    assert caplog.records[1].msg == "serving %s: %s"  # the template kept, for aggregators


def test_a_problem_that_went_away_is_logged_when_it_comes_back(caplog):
    logger = logging.getLogger("predictor.test-repeats")
    lines = tracing.Repeats(logger)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for problem in ("down", "refused", "down"):  # A, B, A: each look finds one
            lines.next_look()
            lines.warning("serving m: %s", problem)
        lines.clear()  # over (served), then back
        lines.next_look()
        lines.warning("serving m: %s", "down")
    assert caplog.messages == ["serving m: down", "serving m: refused"] + ["serving m: down"] * 2
