"""A process with a child of its own (a grandchild of whoever starts it), for the tests that a
spawned process and all its descendants end with the process that started them, ``kill -9``
included (``common.tether``)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# No braces: launcher.Service.render formats every part of a command.
FAMILY = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
path = sys.argv[1]
with open(path + '.tmp', 'w') as f:
    f.write('%d %d' % (os.getpid(), child.pid))
os.replace(path + '.tmp', path)
if len(sys.argv) > 2:  # serve HTTP on this port: 200 at /
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    ThreadingHTTPServer(('127.0.0.1', int(sys.argv[2])), SimpleHTTPRequestHandler).serve_forever()
time.sleep(600)
"""


def family_command(pid_file: Path, port: int | None = None, python: str = sys.executable):
    """A command that starts a child, writes ``<its pid> <child's pid>`` to ``pid_file`` and
    sleeps, or serves HTTP on ``port``."""
    return [python, "-c", FAMILY, str(pid_file), *([str(port)] if port else [])]


def read_pids(pid_file: Path, timeout: float = 10) -> list[int]:
    """The pids the family wrote: itself, its child."""
    deadline = time.monotonic() + timeout
    while not pid_file.exists():
        assert time.monotonic() < deadline, f"no {pid_file} within {timeout:g} s"
        time.sleep(0.05)
    return [int(pid) for pid in pid_file.read_text().split()]


def alive(pid: int) -> bool:
    """The process runs (exited and not yet reaped: not running)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (ProcessLookupError, FileNotFoundError):
        return False


def left_running(pids: list[int], timeout: float = 10) -> list[int]:
    """Those of ``pids`` still running after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (running := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


def kill_left(pids: list[int]) -> None:
    """SIGKILL those of ``pids`` still running (a failed test leaves nothing behind)."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def described(pids: list[int]) -> str:
    """``pid: command line`` of each of ``pids`` (an assertion's message)."""
    lines = []
    for pid in pids:
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            lines.append(f"{pid}: {cmdline.decode(errors='replace')[:120]}")
    return "\n".join(lines)


def assert_kill_9_ends(spawner: subprocess.Popen, pids: list[int], what: str) -> None:
    """``kill -9`` the ``spawner`` and assert that every one of ``pids`` ends within 10 s."""
    spawner.kill()
    spawner.wait(10)
    running = left_running(pids, timeout=10)
    assert not running, f"running 10 s after kill -9 of {what}:\n{described(running)}"


def end_all(spawner: subprocess.Popen, pids: list[int]) -> None:
    """Kill the ``spawner`` and what is left of ``pids`` (a failed test leaves nothing)."""
    spawner.kill()
    spawner.wait(10)
    spawner.stdout.close()
    kill_left(pids)
