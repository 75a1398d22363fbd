"""``tests.servers.serving`` ends its server with the test process, however that ends: a
``kill -9`` of pytest (or of an xdist worker) leaves no server or server's child running."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port
from tests.descendants import described, family_command, kill_left, left_running, read_pids

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc")

# A test process in a test that serves: the server answers, then the test process is killed.
TEST_PROCESS = """\
import sys, time
from pathlib import Path
from tests.servers import serving
port, log = sys.argv[1], Path(sys.argv[2])
with serving(sys.argv[3:], f"http://127.0.0.1:{port}/", log, cwd=log.parent):
    print("serving", flush=True)
    time.sleep(600)
"""


def test_kill_9_of_the_test_process_ends_the_server_and_its_child(tmp_path):
    pid_file, port = tmp_path / "pids", free_port()
    test_process = subprocess.Popen(
        [sys.executable, "-c", TEST_PROCESS, str(port), str(tmp_path / "server.log"),
         *family_command(pid_file, port)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    pids: list[int] = []
    try:
        pids = read_pids(pid_file)  # the server's, its child's
        assert test_process.stdout.readline() == "serving\n"
        test_process.kill()
        test_process.wait(10)
        running = left_running(pids, timeout=10)
        assert not running, f"running 10 s after kill -9 of the test process:\n{described(running)}"
    finally:
        test_process.kill()
        test_process.wait(10)
        test_process.stdout.close()
        kill_left(pids)
