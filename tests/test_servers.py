"""``tests.servers.serving`` ends its server with the test process, however that ends: a
``kill -9`` of pytest (or of an xdist worker) leaves no server or server's child running."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port
from tests.descendants import assert_kill_9_ends, end_all, family_command, read_pids

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
        assert_kill_9_ends(test_process, pids, "the test process")
    finally:
        end_all(test_process, pids)
