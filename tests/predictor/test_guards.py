"""The predictor's guards are the job APIs' (``jobs``): offline docs under the token rule, the
token rule at start-up, and 422 answers that never echo a large input."""

import os
import re
import subprocess
import sys

import pytest
import requests

from common import Settings
from dashboard.choose import choose_run
from predictor.app import create_app
from service import InsecureToken
from tests.conftest import ROOT, LiveServer
from tests.predictor.conftest import AUTH, TOKEN, get_ready, wait_ready
from tests.rawhttp import open_request, read_answer

DOCS = ("/docs", "/redoc", "/openapi.json")


def test_docs_pages_load_nothing_from_another_host(predictor):
    for path in ("/docs", "/redoc"):
        page = requests.get(predictor + path, headers=AUTH, timeout=10)
        assert page.status_code == 200, path
        hosts = set(re.findall(r"(?:https?:)?//([\w.:-]+)", page.text))
        assert hosts <= {predictor.removeprefix("http://")}, (path, hosts)
        assert "/static/docs/" in page.text
        assert "'self'" in page.headers["Content-Security-Policy"]
    script = requests.get(f"{predictor}/static/docs/swagger-ui-bundle.js", timeout=10)
    assert script.status_code == 200 and len(script.content) > 100_000


def test_docs_need_the_token_by_default(predictor):
    for path in DOCS:
        assert requests.get(predictor + path, timeout=10).status_code == 401, path
        assert requests.get(predictor + path, headers=AUTH, timeout=10).status_code == 200, path


def test_api_docs_public_opens_the_docs_only(settings):
    public = settings.model_copy(update={"api_docs_public": True})
    with LiveServer(create_app(public)) as server:
        for path in DOCS:
            assert requests.get(server.url + path, timeout=10).status_code == 200, path
        assert get_ready(server.url, token=None).status_code == 401
        assert requests.post(f"{server.url}/predict", timeout=10).status_code == 401


@pytest.fixture
def offline_settings(tmp_path, unreachable_uri) -> Settings:
    """The token on, and no MLflow: the guards answer before a model is needed."""
    return Settings(_env_file=None, mlflow_tracking_uri=unreachable_uri, mongo_uri=None,
                    store_dir=tmp_path / "store", pipeline_api_token=TOKEN)  # fmt: skip


def test_head_health_answers_without_the_token(offline_settings):
    with LiveServer(create_app(offline_settings)) as server:
        answer = requests.head(f"{server.url}/health", timeout=10)
    assert answer.status_code == 200 and answer.content == b""


def test_an_upload_without_the_token_is_401_before_its_body_arrives(offline_settings):
    # The audit's attack: 120 MB declared, the start sent, the rest never; the predictor used
    # to read (and hold) all it got before checking the token.
    settings = offline_settings
    head = {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": "120000000"}
    with (
        LiveServer(create_app(settings)) as server,
        open_request(server.url, "POST", "/predict", head, b"x" * 65536) as sock,
    ):
        answer = read_answer(sock)
    assert answer.status == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_the_schema_lists_the_answers_to_a_body_too_slow_or_beyond_the_budget(offline_settings):
    with LiveServer(create_app(offline_settings)) as server:
        schema = requests.get(f"{server.url}/openapi.json", headers=AUTH, timeout=10).json()
    responses = schema["paths"]["/predict"]["post"]["responses"]
    assert "BODY_TIMEOUT_S" in responses["408"]["description"]
    assert "PREDICT_MAX_BODY_BUFFER_BYTES" in responses["503"]["description"]


@pytest.mark.parametrize("token", ["", "   ", "CHANGE-ME", "s3cret", "x" * 23])
def test_weak_token_refuses_to_start(settings, token):
    with pytest.raises(InsecureToken, match="PIPELINE_API_TOKEN"):
        create_app(settings.model_copy(update={"pipeline_api_token": token}))


def test_uvicorn_with_a_placeholder_token_exits_with_one_line(tmp_path, unreachable_uri):
    env = {"PIPELINE_API_TOKEN": "CHANGE-ME", "PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": unreachable_uri}  # fmt: skip
    argv = [sys.executable, "-m", "uvicorn", "predictor.app:app", "--port", "9"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "PIPELINE_API_TOKEN is the placeholder" in lines[0], lines


@pytest.mark.parametrize(
    "part",
    [(None, "x" * 500_000), (None, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 1000)],
    ids=["text-field", "file-without-filename"],
)
def test_a_files_part_that_is_no_upload_is_422_without_echoing_it(predictor, settings,
                                                                  served_runs, part):  # fmt: skip
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor)  # the route validates its body once a model is served
    r = requests.post(f"{predictor}/predict", files=[("files", part)], headers=AUTH, timeout=60)
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) < 2000, f"{len(r.content)} bytes: {r.text[:300]}"
    assert r.json()["detail"].startswith("part 'files' #1 of 1 is text, not a file")


def test_over_a_thousand_files_is_the_contracts_422_naming_the_limit(predictor, settings,
                                                                     served_runs):  # fmt: skip
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor)
    parts = [("files", (f"{i}.png", b"x", "image/png")) for i in range(1001)]
    r = requests.post(f"{predictor}/predict", files=parts, headers=AUTH, timeout=60)
    assert r.status_code == 422, r.text  # Starlette's own limit answered a bare 400
    assert r.json()["detail"] == (
        "this request has more than 1,000 files; send at most 256 images per request, each in "
        "a part named 'files' (split the batch)"
    )
