"""HTTP/1.1 over a plain socket, for what an HTTP client library will not do: send the head of a
request and only part of its body (or none), and read what the server answers meanwhile."""

import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

GUARD_S = 30
"""How long a read waits before the test fails instead of hanging (not a timing assertion)."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def open_request(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> socket.socket:
    """A connection to ``url`` that has sent the head of a request and ``body`` (which may be
    only the start of the body its ``Content-Length`` declares)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=GUARD_S)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """The next answer on ``sock``: status, headers (lower-case names) and body (by its
    ``Content-Length``; an interim ``100 Continue`` is an answer of its own)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Answer(int(status_line.split()[1]), headers, rest[:length])
