"""A request's head (request line and headers) is bounded before the token gate can act: a
service started by its real command (``launcher.services``, the toy app in place of the
evaluator's) answers 431 and closes the connection once a head passes ``MAX_HEAD_BYTES``, without
reading the rest of it, while heads up to the bound (an 8 KB token, an 8 KB cookie) are served."""

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import spawn_tethered
from launcher import EVALUATOR, EXPLAINER, PREDICTOR
from service.protocol import MAX_HEAD_BYTES
from tests.conftest import ROOT, free_port
from tests.rawhttp import read_answer
from tests.servers import command_pid, stop_group, wait_http
from tests.service.test_intake import toy_body

TOKEN = "t" * 8192  # an 8 KB bearer token: a large, legitimate header
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Cookie": "session=" + "c" * 8192}
MB = 1 << 20


class Service:
    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc, self.port = proc, port

    def rss_mb(self) -> float:
        status = Path(f"/proc/{command_pid(self.proc)}/status").read_text()  # not the tether's
        [line] = [line for line in status.splitlines() if line.startswith("VmRSS:")]
        return int(line.split()[1]) / 1024

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    """The toy job service, started by the evaluator's own command (``make demo``'s; Compose,
    Kubernetes and the image run the same, as tests/deploy checks)."""
    tmp = tmp_path_factory.mktemp("head")
    port = free_port()
    argv = [sys.executable, "-m", *EVALUATOR.render(host="127.0.0.1", port=port)]  # uvicorn
    argv[argv.index("evaluator.app:app")] = "tests.jobs.toy_service:app"
    env = {**os.environ, "STORE_DIR": str(tmp / "store"), "PIPELINE_API_TOKEN": TOKEN}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "MAX_BODY_BYTES": str(MB)}
    env.pop("MONGO_URI", None)
    with open(tmp / "service.log", "w") as log:
        proc = spawn_tethered(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/health", timeout=60, proc=proc)
            yield Service(proc, port)
        finally:
            stop_group(proc)


def request(path: str, headers: dict[str, str], method: str = "GET", body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def padded(size: int) -> bytes:
    """An authorised ``GET /jobs`` whose head is exactly ``size`` bytes."""
    bare = request("/jobs", {**HEADERS, "X-Pad": ""})
    return request("/jobs", {**HEADERS, "X-Pad": "p" * (size - len(bare))})


def test_every_service_runs_the_bounded_protocol():
    apps = {"evaluator.app:app", "explainer.app:app", "predictor.app:app"}
    services = (EVALUATOR, EXPLAINER, PREDICTOR)
    [command] = {tuple("APP" if p in apps else p for p in s.command) for s in services}
    assert command[command.index("--http") + 1] == "service.protocol:BoundedHead"


def test_heads_up_to_the_bound_are_served_on_one_connection(service):
    # An 8 KB token and an 8 KB cookie; a head of exactly the bound; a body far over the bound
    # in the same packets as its head (not counted as head); and the 8 KB heads again, more of
    # them on this connection than the bound holds (the count starts again with each request).
    requests = [request("/jobs", HEADERS), padded(MAX_HEAD_BYTES)]
    body = toy_body(4 * MAX_HEAD_BYTES)
    toy = {**HEADERS, "Content-Type": "application/json", "Content-Length": str(len(body))}
    requests.append(request("/toy", toy, "POST", body))
    requests += [request("/jobs", HEADERS)] * (MAX_HEAD_BYTES // 16000 + 2)
    with service.connect() as sock:
        for raw in requests:
            sock.sendall(raw)
            assert read_answer(sock).status in (200, 202)


def test_a_head_one_byte_over_the_bound_is_answered_431_and_closed(service):
    with service.connect() as sock:
        sock.sendall(padded(MAX_HEAD_BYTES + 1))
        answer = read_answer(sock)
        assert answer.status == 431
        assert answer.headers["connection"] == "close"
        assert sock.recv(1) == b""


def test_an_endless_header_is_refused_before_it_is_read(service):
    """Without the bound the service reads all of a header (then answers 401, the token gate's
    answer, or runs out of memory): here it would take the 32 MB in."""
    before = service.rss_mb()
    sent = 0
    with service.connect() as sock:
        # after a request on the connection: the bound holds for each head, not only the first
        sock.sendall(request("/jobs", HEADERS) + b"GET /jobs HTTP/1.1\r\nX-Big: ")
        with contextlib.suppress(ConnectionError):  # the service closed the connection
            while sent < 32 * MB:
                sock.sendall(b"x" * MB)
                sent += MB
        grown = service.rss_mb() - before
    # 1 to 3 MB on Linux: what the kernel's socket buffers took before the service closed it
    assert sent <= 16 * MB, f"the service read {sent // MB} MB of a header, grew {grown:.0f} MB"
    assert grown < 8, f"the service grew by {grown:.0f} MB"
