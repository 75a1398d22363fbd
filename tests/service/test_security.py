"""The guards of every service's app (``service``): the token rule at start-up, the body limit,
the documented answers and the docs pages (toy service over real HTTP)."""

import subprocess
import sys

import pytest
import requests
from fastapi import FastAPI

from common import Settings
from service import InsecureToken, service_app, unparsable_body
from service.docs import STATIC_URL
from service.security import MAX_LISTED_ERRORS
from tests.conftest import ROOT, LiveServer
from tests.jobs.conftest import make_settings, make_toy_app

TOKEN = "toy-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("token", ["", "   ", "CHANGE-ME", "change-me", "s3cret", "x" * 23])
def test_weak_token_refuses_to_start(tmp_path, token):
    with pytest.raises(InsecureToken, match="PIPELINE_API_TOKEN"):
        make_toy_app(make_settings(tmp_path, pipeline_api_token=token))


@pytest.mark.parametrize("token", ["pässwört-" + "x" * 24, "escape-\x1b" + "x" * 24])
def test_a_token_no_header_can_carry_refuses_to_start(tmp_path, token):
    with pytest.raises(InsecureToken, match="other than printable ASCII"):
        make_toy_app(make_settings(tmp_path, pipeline_api_token=token))


def test_unset_token_starts_without_authentication(tmp_path):
    assert make_toy_app(make_settings(tmp_path, pipeline_api_token=None)) is not None


def test_service_with_placeholder_token_exits_with_one_line(tmp_path):
    env = {"PIPELINE_API_TOKEN": "CHANGE-ME", "STORE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-m", "uvicorn", "evaluator.app:app", "--port", "9"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        line for line in done.stderr.strip().splitlines() if "PIPELINE_API_TOKEN" in line
    ]
    assert "Traceback" not in done.stderr
    assert "secrets.token_hex" in done.stderr


def test_a_token_read_with_its_trailing_newline_still_opens_the_api(tmp_path, monkeypatch):
    # A Kubernetes secret or .env value made from a file ends with a newline.
    monkeypatch.setenv("PIPELINE_API_TOKEN", TOKEN + "\n")
    settings = Settings(
        _env_file=None, store_dir=tmp_path / "store", mongo_uri=None,
        mlflow_tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
    )  # fmt: skip
    with LiveServer(make_toy_app(settings)) as live:
        assert requests.get(f"{live.url}/jobs", headers=AUTH).status_code == 200
        assert requests.get(f"{live.url}/jobs").status_code == 401


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"MAX_BODY_BYTES": "abc"}, "invalid settings: MAX_BODY_BYTES='abc': Input should be"),
        ({"STORE_DIR": "FILE"}, "is a file, not a folder: set STORE_DIR"),
        ({"STORE_DIR": "/proc/1/mlpipeline-store"}, "cannot be written by this service"),
    ],
)
def test_a_bad_setting_stops_the_service_with_one_line(tmp_path, env, says):
    (tmp_path / "a-file").write_text("")
    env = {k: str(tmp_path / "a-file") if v == "FILE" else v for k, v in env.items()}
    env = {"STORE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", **env}
    # the toy's app: the same start-up (jobs.create_job_app) as the evaluator's, without torch
    argv = [sys.executable, "-m", "uvicorn", "tests.jobs.toy_service:app", "--port", "9"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert says in line


def test_body_over_the_limit_is_413_without_echoing_it(tmp_path):
    settings = make_settings(tmp_path, max_body_bytes=1000)
    with LiveServer(make_toy_app(settings)) as live:
        answer = requests.post(f"{live.url}/toy", json={"run_id": "r", "x": 1, "p": "z" * 5000})
        small = requests.post(f"{live.url}/toy", json={"run_id": "r", "x": 1})
    assert answer.status_code == 413
    assert "z" * 20 not in answer.text
    assert small.status_code == 202


def test_chunked_body_over_the_limit_is_413(tmp_path):
    settings = make_settings(tmp_path, max_body_bytes=1000)

    def chunks():
        yield b'{"run_id": "r", "x": 1, "p": "'
        for _ in range(10):
            yield b"z" * 500
        yield b'"}'

    with LiveServer(make_toy_app(settings)) as live:
        answer = requests.post(
            f"{live.url}/toy", data=chunks(), headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 413


def list_app(tmp_path) -> FastAPI:
    """A service shell with one route whose body is a list of numbers."""
    settings = make_settings(tmp_path, max_body_bytes=10_000_000)
    app = service_app("Lists", None, settings, unparsable_body, {"max_bytes": 10_000_000})

    @app.post("/numbers")
    async def numbers(values: list[int]) -> int:
        return len(values)

    return app


def test_a_422_lists_twenty_errors_and_counts_the_rest(tmp_path):
    with LiveServer(list_app(tmp_path)) as live:
        answer = requests.post(f"{live.url}/numbers", json=["x"] * 100_000)
    assert answer.status_code == 422
    *listed, rest = answer.json()["detail"]
    assert [error["loc"] for error in listed] == [["body", i] for i in range(MAX_LISTED_ERRORS)]
    assert rest["type"] == "too_many_errors"
    assert rest["msg"].startswith(f"{100_000 - MAX_LISTED_ERRORS} more errors")
    assert len(answer.content) < 10_000


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        ("application/x-www-form-urlencoded", "Content-Type 'application/x-www-form-urlencoded'"),
        ("text/plain", "Content-Type 'text/plain'"),
        (None, "no Content-Type"),
    ],
)
def test_a_body_not_sent_as_json_is_422_saying_which_header_to_send(toy_server, content_type, says):
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"run_id": "a1", "x": 1}'
    answer = requests.post(f"{toy_server}/toy", data=body, headers=headers)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "'Content-Type: application/json'" in detail and says in detail
    assert '"run_id"' not in detail  # the body is not echoed


def test_a_trailing_slash_is_a_404_naming_the_path_not_a_redirect_to_the_host_sent(toy_server):
    answer = requests.get(
        f"{toy_server}/jobs/", headers={"Host": "203.0.113.7"}, allow_redirects=False
    )
    assert answer.status_code == 404 and "location" not in answer.headers
    assert "send the request to /jobs" in answer.json()["detail"]
    assert "203.0.113.7" not in answer.text


def test_a_path_without_a_route_is_a_404_pointing_at_the_docs(toy_server):
    answer = requests.get(f"{toy_server}/evaluations")
    assert answer.status_code == 404
    assert answer.json()["detail"] == (
        "no route at /evaluations: this service's routes are listed at /docs"
    )


def test_a_missing_file_of_the_docs_is_their_404_not_a_path_without_a_route(toy_server):
    answer = requests.get(f"{toy_server}{STATIC_URL}/nothing.js")
    assert answer.status_code == 404 and "no route" not in answer.text


def test_a_method_a_path_does_not_serve_is_a_405_naming_those_it_does(toy_server):
    answer = requests.put(f"{toy_server}/jobs/abc")
    assert answer.status_code == 405 and answer.headers["allow"] == "DELETE, GET"
    assert answer.json()["detail"] == "PUT is not served at /jobs/abc: use DELETE or GET"


def test_without_a_token_a_request_to_a_host_name_is_refused_saying_why(toy_server):
    answer = requests.get(f"{toy_server}/jobs", headers={"Host": "rebound.example:5006"})
    assert answer.status_code == 403
    detail = answer.json()["detail"]
    assert "'rebound.example:5006'" in detail and "DNS rebinding" in detail
    assert "PIPELINE_API_TOKEN" in detail and "http://127.0.0.1:<port>" in detail


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:5006", "app.localhost", "127.0.0.1:5006", "[::1]:5006",
             "10.1.2.3"],
)  # fmt: skip
def test_without_a_token_requests_to_localhost_or_an_ip_address_are_answered(toy_server, host):
    assert requests.get(f"{toy_server}/jobs", headers={"Host": host}).status_code == 200


def test_with_a_token_a_host_name_is_answered(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)
    with LiveServer(make_toy_app(settings)) as live:
        named = {"Host": "evaluator:5006"}  # as Compose's services call each other
        assert requests.get(f"{live.url}/jobs", headers={**named, **AUTH}).status_code == 200
        assert requests.get(f"{live.url}/jobs", headers=named).status_code == 401


def test_docs_need_the_token_by_default(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)
    with LiveServer(make_toy_app(settings)) as live:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert requests.get(live.url + path).status_code == 401, path
            assert requests.get(live.url + path, headers=AUTH).status_code == 200, path


def test_docs_can_be_made_public(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN, api_docs_public=True)
    with LiveServer(make_toy_app(settings)) as live:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert requests.get(live.url + path).status_code == 200, path
        assert requests.get(f"{live.url}/jobs").status_code == 401


def test_docs_pages_load_their_scripts_from_the_service(toy_server):
    page = requests.get(f"{toy_server}/docs").text + requests.get(f"{toy_server}/redoc").text
    assert "/static/docs/swagger-ui-bundle.js" in page
    assert "/static/docs/redoc.standalone.js" in page
    assert "cdn." not in page and "fonts.googleapis" not in page
    script = requests.get(f"{toy_server}/static/docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_schema_lists_every_answer_of_the_shared_routes(toy_server):
    paths = requests.get(f"{toy_server}/openapi.json").json()["paths"]
    assert set(paths["/jobs/{job_id}"]["get"]["responses"]) == {
        "200", "401", "403", "404", "409", "422", "503"
    }  # fmt: skip
    assert set(paths["/jobs"]["get"]["responses"]) == {"200", "401", "403", "404", "422", "503"}
    assert set(paths["/ready"]["get"]["responses"]) == {"200", "401", "403", "503"}
    error = paths["/ready"]["get"]["responses"]["401"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorOut"}


def test_a_body_naming_a_field_twice_is_refused_naming_it(tmp_path):
    with LiveServer(make_toy_app(make_settings(tmp_path))) as live:
        twice = requests.post(f"{live.url}/toy", data='{"run_id": "a", "x": 1, "run_id": "b"}',
                              headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
        once = requests.post(f"{live.url}/toy", json={"run_id": "b", "x": 1}, timeout=30)
    assert twice.status_code == 422
    assert twice.json()["detail"] == (
        "the request body names the field 'run_id' more than once; send each field once"
    )
    assert once.status_code in (200, 202)
