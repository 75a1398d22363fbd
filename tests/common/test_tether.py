"""``common.spawn_tethered``: the command and its children stop as a group, the tether reads as
the command, and a spawning thread that ends is not a dead parent. (A ``kill -9`` of the spawner:
tests/launcher/test_killed_launcher.py and tests/test_servers.py.)"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from common import spawn_tethered
from tests.descendants import alive, family_command, kill_left, left_running, read_pids

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc")


def test_the_tether_exits_with_the_commands_status():
    assert spawn_tethered([sys.executable, "-c", "raise SystemExit(3)"]).wait(10) == 3
    killed = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert spawn_tethered([sys.executable, "-c", killed]).wait(10) == -signal.SIGKILL


def test_a_command_that_cannot_start_exits_127_and_says_why():
    proc = spawn_tethered(["no-such-command-here"], stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 127
    assert "cannot run 'no-such-command-here'" in err


@pytest.mark.parametrize("how", ["the group", "the tether alone"])
def test_sigterm_stops_the_command_and_its_child(tmp_path, how):
    """``os.killpg(proc.pid, ...)`` (Stack.stop_all, tests.servers.stop_group) as before the
    tether; ``proc.terminate()`` is passed on, and the command's leftovers are ended."""
    proc = spawn_tethered(family_command(tmp_path / "pids"))
    pids = read_pids(tmp_path / "pids")
    try:
        assert os.getpgid(pids[0]) == os.getpgid(pids[1]) == proc.pid  # one group: the tether's
        if how == "the group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        assert proc.wait(10) == -signal.SIGTERM
        assert left_running(pids, timeout=5) == []
    finally:
        kill_left([proc.pid, *pids])


def test_a_spawning_thread_that_ends_does_not_end_the_command(tmp_path):
    """Linux's parent-death signal fires when the spawning thread exits: the tether sees its
    parent process alive and goes on."""
    spawned: list[subprocess.Popen] = []

    def spawn() -> None:
        spawned.append(spawn_tethered(["sleep", "60"]))
        time.sleep(1)  # the tether has armed its signal: this thread's end sends it

    thread = threading.Thread(target=spawn)
    thread.start()
    thread.join()
    [proc] = spawned
    try:
        time.sleep(1)  # two of the tether's polls of its parent
        assert proc.poll() is None and alive(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
