"""DNS rebinding: a web page whose domain is rebound to 127.0.0.1 is same-origin with a dashboard
on this machine, but its requests carry its own name in ``Host``. The dashboard, started as it
really is (the launcher's command, as Compose, k8s and the image run it; ``streamlit run`` in the
repository, which reads ``.streamlit/config.toml``), refuses such a WebSocket, the one channel
of every tab's data and of the Choose form, and still accepts the names a browser on this
machine or behind ``kubectl port-forward`` sends. ``server.allowedHosts`` filters the WebSocket
only: the health check answers any ``Host``, as the kubelet's probes need."""

import base64
import os
import socket

import pytest

from tests.conftest import free_port, serving
from tests.dashboard.test_offline import _documented, _launched

# A port the page's URL names (the attacker's, not the dashboard's): Streamlit ignores ports.
EVIL = "evil.example:7385"


def _status(port: int, request: str) -> str:
    """The status line the dashboard answers ``request`` (a raw HTTP/1.1 head) with."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode("latin-1"))
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(1024)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode("latin-1")


def _upgrade(port: int, host: str) -> str:
    """Open ``/_stcore/stream`` as the dashboard's page does, same-origin with ``host``."""
    key = base64.b64encode(os.urandom(16)).decode()
    return _status(port, (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Origin: http://{host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    ))  # fmt: skip


@pytest.mark.parametrize("command", [_launched, _documented], ids=["launcher", "documented"])
def test_a_rebound_host_name_is_refused_the_websocket(tmp_path, command):
    port = free_port()
    argv, cwd = command(port, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.pop("MONGO_URI", None)
    log = tmp_path / "streamlit.log"
    with serving(argv, f"http://127.0.0.1:{port}/_stcore/health", log, cwd=cwd, env=env):
        refused = _upgrade(port, EVIL)
        by_address = _upgrade(port, f"127.0.0.1:{port}")
        port_forward = _upgrade(port, f"localhost:{port}")  # kubectl port-forward, make demo
        probe = _status(port, f"GET /_stcore/health HTTP/1.1\r\nHost: 10.1.2.3:{port}\r\n\r\n")
    assert refused.split()[1] == "403", refused
    assert by_address.split()[1] == "101", by_address
    assert port_forward.split()[1] == "101", port_forward
    assert probe.split()[1] == "200", probe  # the kubelet sends the pod's address
