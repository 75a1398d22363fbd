"""A launcher killed with ``kill -9`` (no cleanup of its own runs) leaves no service running: each
service is tethered to it (``common.spawn_tethered``), children of the service included."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.descendants import (
    assert_kill_9_ends,
    end_all,
    family_command,
    left_running,
    read_pids,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc")

# A launcher as `make demo` is one: a Stack that starts a service and serves in the foreground.
LAUNCHER = """\
import sys, time
from pathlib import Path
from launcher import Service
from launcher.stack import Stack, StackConfig
tmp = Path(sys.argv[1])
stack = Stack(StackConfig(root=tmp, data_dir=tmp / "data", state_dir=tmp / ".state",
                          log_dir=tmp / "logs"))
stack.start(Service("family", tuple(sys.argv[2:])))
print(stack.procs["family"].pid, flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_launcher_ends_its_service_and_the_services_child(tmp_path):
    pid_file = tmp_path / "pids"
    command = family_command(pid_file, python="python")  # as a Service names it
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path), *command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        # Popen's (the tether; without it, the service), the service's, its child's
        pids = list(dict.fromkeys([int(launcher.stdout.readline()), *read_pids(pid_file)]))
        assert left_running(pids, timeout=0) == pids
        assert_kill_9_ends(launcher, pids, "the launcher")
    finally:
        end_all(launcher, pids)
