"""What a request meets before routing (``service.intake``): the liveness short cut, the token
gate before any body is read, the body budget shared by all connections and the time limit on a
body (toy service on a real uvicorn, raw sockets where a client library would send the whole
body)."""

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from starlette.types import Message

from jobs import JobStore, get_database
from service.intake import BodyLimit, route_path
from tests.conftest import LiveServer
from tests.jobs.conftest import CHECKED, make_settings, make_toy_app, wait_until
from tests.rawhttp import open_request, read_answer

TOKEN = "toy-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


def toy_body(size: int, run_id: str = "a1", x: int = 1) -> bytes:
    """A valid toy request of exactly ``size`` bytes (JSON padded with spaces)."""
    body = json.dumps({"run_id": run_id, "x": x}).encode()
    return body + b" " * (size - len(body))


@contextlib.contextmanager
def holding_800_bytes(url: str) -> Iterator[socket.socket]:
    """An open ``POST /toy`` that announced 800 bytes and got "100 Continue": it holds them of
    the budget until its body is sent and answered (the socket it yields)."""
    head = {**JSON, "Content-Length": "800", "Expect": "100-continue"}
    with open_request(url, "POST", "/toy", head) as first:
        assert read_answer(first).status == 100
        yield first


def unclaimed_job(store: JobStore, run_id: str) -> str:
    """The id of a queued toy job (the inputs of ``toy_body(..., run_id, 5)``) that no runner
    claims while the test runs: a ``?wait=`` on it waits until it is cancelled."""
    job, _ = store.submit("toy", run_id, {"x": 5, "sleep": 0.0})
    later = datetime.now(UTC) + timedelta(hours=1)
    store.col.update_one({"_id": job["job_id"]}, {"$set": {"not_before": later}})
    return job["job_id"]


def checked(run_id: str) -> bool:
    """Whether the toy route's request check has run for a body of ``run_id``."""
    return any(body["run_id"] == run_id for body in CHECKED)


def test_head_health_answers_as_get_does_without_a_body(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)  # a load balancer has none
    with LiveServer(make_toy_app(settings)) as live:
        head = requests.head(f"{live.url}/health")
        get = requests.get(f"{live.url}/health")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == "application/json"


def test_a_request_without_the_token_is_refused_before_its_body_is_sent(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)
    with LiveServer(make_toy_app(settings)) as live:
        # The client waits for "100 Continue" before sending its body: the gate answers instead.
        head = {**JSON, "Content-Length": "900000", "Expect": "100-continue"}
        with open_request(live.url, "POST", "/toy", head) as sock:
            answer = read_answer(sock)
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <token>" in answer.json()["detail"]


def test_an_unfinished_body_without_the_token_is_answered_401(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)
    with LiveServer(make_toy_app(settings)) as live:
        head = {**JSON, "Content-Length": "900000"}
        with open_request(live.url, "POST", "/toy", head, b"{" * 10_000) as sock:
            answer = read_answer(sock)
    assert answer.status == 401 and answer.headers["connection"] == "close"


def test_a_complete_malformed_body_without_the_token_is_401_not_422(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)
    with LiveServer(make_toy_app(settings)) as live:
        answer = requests.post(f"{live.url}/toy", data=b"{not json", headers=JSON)
    assert answer.status_code == 401


def test_an_unknown_path_without_the_token_is_401(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)
    with LiveServer(make_toy_app(settings)) as live:
        unknown = requests.get(f"{live.url}/no-such-path")
        known = requests.get(f"{live.url}/no-such-path", headers=AUTH)
    assert unknown.status_code == 401 and known.status_code == 404


def test_a_body_over_the_default_limit_of_64_kib_is_413(tmp_path):
    # The services' bodies are JSON of under 13 KB: a waiting request keeps one this small.
    with LiveServer(make_toy_app(make_settings(tmp_path))) as live:
        answer = requests.post(f"{live.url}/toy", data=toy_body(64 * 2**10 + 1), headers=JSON)
    assert answer.status_code == 413 and "65536 bytes" in answer.json()["detail"]


def test_bodies_beyond_the_budget_get_503_before_they_are_read_until_it_is_given_back(tmp_path):
    settings = make_settings(tmp_path, max_body_bytes=1000, max_body_buffer_bytes=1000)
    with LiveServer(make_toy_app(settings)) as live:
        with holding_800_bytes(live.url) as first:
            head = {**JSON, "Content-Length": "800", "Expect": "100-continue"}
            with open_request(live.url, "POST", "/toy", head) as second:
                refused = read_answer(second)
            first.sendall(toy_body(800))
            accepted = read_answer(first)
        # The first request is answered: its share is back, and the same body is taken again.
        again = requests.post(f"{live.url}/toy", data=toy_body(800), headers=JSON)
    assert refused.status == 503 and int(refused.headers["retry-after"]) > 0
    assert "MAX_BODY_BUFFER_BYTES" in refused.json()["detail"]
    assert accepted.status == 202 and again.status_code in (200, 202)


def test_a_body_that_does_not_arrive_in_time_is_408_and_gives_its_share_back(tmp_path):
    settings = make_settings(
        tmp_path, max_body_bytes=1000, max_body_buffer_bytes=1000, body_timeout_s=0.5
    )
    with LiveServer(make_toy_app(settings)) as live:
        head = {**JSON, "Content-Length": "800"}
        with open_request(live.url, "POST", "/toy", head, b'{"run_id": ') as stalled:
            late = read_answer(stalled)
        after = requests.post(f"{live.url}/toy", data=toy_body(800), headers=JSON)
    assert late.status == 408 and "BODY_TIMEOUT_S" in late.json()["detail"]
    assert after.status_code == 202


def test_a_chunked_body_beyond_the_budget_is_503(tmp_path):
    settings = make_settings(tmp_path, max_body_bytes=1000, max_body_buffer_bytes=1000)
    with LiveServer(make_toy_app(settings)) as live, holding_800_bytes(live.url):
        chunked = {**JSON, "Transfer-Encoding": "chunked"}
        chunk = b"%x\r\n%s\r\n" % (300, b" " * 300)
        with open_request(live.url, "POST", "/toy", chunked, chunk) as second:
            refused = read_answer(second)
    assert refused.status == 503


def test_a_long_wait_gives_its_body_share_back_once_the_body_is_handed_on(tmp_path):
    settings = make_settings(tmp_path, max_body_bytes=1000, max_body_buffer_bytes=1000)
    job_id = unclaimed_job(JobStore(get_database(settings)), "c1")  # queued before the runner
    with LiveServer(make_toy_app(settings)) as live:
        head = {**JSON, "Content-Length": "800"}
        body = toy_body(800, "c1", 5)
        with open_request(live.url, "POST", "/toy?wait=600", head, body) as waiting:
            wait_until(lambda: checked("c1"), 30, "the waiting request's check")
            # The first request waits for its job: the whole budget is free for another body.
            other = requests.post(f"{live.url}/toy", data=toy_body(1000, "c2"), headers=JSON)
            requests.delete(f"{live.url}/jobs/{job_id}")
            ended = read_answer(waiting)
    assert other.status_code == 202
    assert ended.status == 200 and ended.json()["status"] == "cancelled"  # it was still waiting


def test_a_client_that_hangs_up_during_a_long_wait_holds_no_body_share(tmp_path):
    settings = make_settings(tmp_path, max_body_bytes=1000, max_body_buffer_bytes=1000)
    job_id = unclaimed_job(JobStore(get_database(settings)), "d1")
    with LiveServer(make_toy_app(settings)) as live:
        head = {**JSON, "Content-Length": "800"}
        with open_request(live.url, "POST", "/toy?wait=600", head, toy_body(800, "d1", 5)):
            wait_until(lambda: checked("d1"), 30, "the request's check")
        # Hung up: the route still waits (nothing watches the connection), holding no share.
        after = requests.post(f"{live.url}/toy", data=toy_body(1000, "d2"), headers=JSON)
        requests.delete(f"{live.url}/jobs/{job_id}")  # ends the wait, so the server can stop
    assert after.status_code == 202


def test_a_waiting_get_that_carries_a_body_holds_no_share(tmp_path):
    settings = make_settings(tmp_path, max_body_bytes=1000, max_body_buffer_bytes=1000)
    job_id = unclaimed_job(JobStore(get_database(settings)), "e1")
    with LiveServer(make_toy_app(settings)) as live:
        head = {"Content-Length": "800"}
        path = f"/jobs/{job_id}?wait=600"  # a route that never reads a body it is sent
        with open_request(live.url, "GET", path, head, b" " * 800) as waiting:
            try:
                # while the GET waits, the whole budget is free for a POST
                after = requests.post(f"{live.url}/toy", data=toy_body(1000, "e2"), headers=JSON)
            finally:
                requests.delete(f"{live.url}/jobs/{job_id}")  # ends the wait
            answered = read_answer(waiting)
    assert after.status_code == 202
    assert answered.status == 200 and answered.json()["status"] == "cancelled"


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "OPTIONS"])
def test_a_body_announced_on_a_method_without_one_is_left_unread(tmp_path, method):
    """Answered as without it, by routing: ``/toy`` takes POST only, so a 405 (what an API
    checker expects of a method the schema does not list), without "100 Continue"."""
    with LiveServer(make_toy_app(make_settings(tmp_path))) as live:
        head = {"Content-Length": "500", "Expect": "100-continue"}
        with open_request(live.url, method, "/toy", head) as sock:
            answer = read_answer(sock)
    assert answer.status == 405


def test_a_chunked_body_on_a_get_is_left_unread(tmp_path):
    with LiveServer(make_toy_app(make_settings(tmp_path))) as live:
        head = {"Transfer-Encoding": "chunked"}
        with open_request(live.url, "GET", "/jobs", head, b"3\r\nabc\r\n0\r\n\r\n") as sock:
            answer = read_answer(sock)
    assert answer.status == 200 and answer.json() == []  # as without the body


def test_a_refusal_slower_to_send_than_the_time_limit_is_not_followed_by_a_408():
    # The server's side of the socket is played here: a send that waits (a client that does
    # not read) cannot be staged over a real socket with an answer this small.
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"x" * 200, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)
        await asyncio.sleep(0.5)  # longer than the body's time limit below

    async def never_called(scope, receive, send) -> None:
        raise AssertionError("a refused body reached the app")

    limit = BodyLimit(never_called, max_bytes=100, timeout_s=0.1)
    scope = {"type": "http", "method": "POST", "path": "/toy", "headers": []}
    asyncio.run(limit(scope, receive, send))
    starts = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert starts == [413]


def test_a_root_path_ends_at_a_slash():
    scope = {"path": "/apihealth", "root_path": "/api"}
    assert route_path(scope) == "/apihealth"
    assert route_path({"path": "/api/health", "root_path": "/api"}) == "/health"
