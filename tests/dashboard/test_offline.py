"""The dashboard reaches nothing outside: started as documented (``streamlit run
dashboard/dashboard.py`` in the repository, headless, on all addresses), it makes no request to
the internet, such as Streamlit's look-up of the machine's external IP address."""

import os
import socketserver
import sys
import threading
import time

import pytest

from launcher.services import DASHBOARD
from tests.conftest import ROOT, free_port, serving


class _Recorder(socketserver.ThreadingTCPServer):
    """A stand-in HTTP(S) proxy that only records the first line of each request."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.seen: list[str] = []
        recorder = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                recorder.seen.append(self.rfile.readline(500).decode("latin-1").strip())

        super().__init__(("127.0.0.1", 0), Handler)


def _documented(port: int, tmp_path) -> tuple[list[str], object]:
    """``streamlit run`` as the README and the dashboard's docstring say, in the repository
    (its ``.streamlit/config.toml`` is read)."""
    return [sys.executable, "-m", "streamlit", "run", "dashboard/dashboard.py",
            "--server.port", str(port), "--server.address", "0.0.0.0",
            "--server.headless", "true"], ROOT  # fmt: skip


def _launched(port: int, tmp_path) -> tuple[list[str], object]:
    """The launcher's command (as Compose, k8s and the image run it) outside the repository:
    its flags alone."""
    argv = DASHBOARD.render(host="0.0.0.0", port=port)
    argv[argv.index("dashboard/dashboard.py")] = str(ROOT / "dashboard" / "dashboard.py")
    return [sys.executable, "-m", *argv], tmp_path


@pytest.mark.parametrize("command", [_documented, _launched], ids=["documented", "launcher"])
def test_a_headless_dashboard_on_all_addresses_requests_nothing_outside(tmp_path, command):
    recorder = _Recorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    proxy = f"http://127.0.0.1:{recorder.server_address[1]}"
    env = {**os.environ, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy,
           "https_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}  # fmt: skip
    env.pop("MONGO_URI", None)
    port = free_port()
    argv, cwd = command(port, tmp_path)
    log = tmp_path / "streamlit.log"
    try:
        with serving(argv, f"http://127.0.0.1:{port}/_stcore/health", log, cwd=cwd, env=env):
            deadline = time.monotonic() + 30
            while "URL: " not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)  # the addresses are printed once the look-ups are done
            printed = log.read_text()
    finally:
        recorder.shutdown()
        recorder.server_close()
    assert "URL: " in printed, printed
    assert recorder.seen == [], printed
