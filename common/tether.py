"""Processes that end with the process that started them, however it ends (``kill -9`` too).

A server started with ``subprocess.Popen`` outlives a parent killed with SIGKILL: no Python
cleanup runs, and the server (holding its port, MLflow's SQLite database) is re-parented to init.
A parent-death signal on the server alone is not enough either: ``mlflow server`` runs uvicorn as a
child of its own, which a SIGKILL of ``mlflow server`` leaves running (measured). So
``spawn_tethered(argv, **popen)`` starts ``argv`` through a small tether process (this file run as
a script, stdlib only, whatever the command's working directory and ``PYTHONPATH``):

- The tether leads a process group of its own (``start_new_session``) and starts the command in
  that group, so the command's children (uvicorn, its workers, a service's job worker) are in it
  too, and ``os.killpg(proc.pid, ...)`` still stops everything, as it did without the tether.
- It asks Linux for a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``) and also checks its
  parent's pid every ``POLL_S`` seconds. When the parent is gone it sends SIGTERM to its whole
  group and SIGKILL to what is left after ``grace`` seconds, itself included.
- SIGTERM and SIGINT sent to the tether are passed on to the command (a signal sent to the whole
  group reaches the command directly as well: the command gets it twice).
- When the command exits, whatever it left behind in the group gets SIGTERM, then SIGKILL after
  ``grace`` seconds (Linux), and the tether exits with the command's status (a command killed by
  signal N: the tether is killed by N), so ``proc.poll()``, ``proc.wait()`` and
  ``proc.returncode`` read as the command's. A command that cannot be started: status 127 and
  the reason on the command's stderr (where ``Popen`` itself would raise).

Limits: ``PR_SET_PDEATHSIG`` fires when the spawning *thread* exits, not only its process. The
tether then finds its parent's pid unchanged and goes on, so spawning from a thread that ends
early is safe; the child is re-armed for the process's next thread to exit. A descendant that
leaves the group (``setsid``, ``setpgid``) escapes it: none of the pipeline's services does. Where
``prctl`` is missing (macOS, BSD) the poll alone notices a dead parent, within ``POLL_S`` seconds,
and without ``/proc`` the leftovers of a command that exited on its own are sent SIGTERM but not
waited for. On systems without process groups (Windows) the command runs untethered.
"""

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
POLL_S = 0.5
GRACE_S = 10.0
PARENT_GONE = 70  # the status of a tether whose parent died before the command started
NOT_STARTED = 127  # the shell's status for a command that could not be run


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent (thread) exits; False where it
    cannot (not Linux, no ``prctl``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def tether_command(argv: list[str], grace: float = GRACE_S) -> list[str]:
    """The command line that runs ``argv`` tethered to this process (``spawn_tethered``)."""
    here = os.path.abspath(__file__)
    # -P: this file's folder (common/) is not put first on the tether's import path
    return [sys.executable, "-P", here, "--parent", str(os.getpid()), "--grace", str(grace),
            "--", *argv]  # fmt: skip


def spawn_tethered(argv: list[str], grace: float = GRACE_S, **popen) -> subprocess.Popen:
    """``subprocess.Popen(argv, **popen)`` in a process group of its own, ended with this process
    (see the module's docstring); stop it as before, with ``os.killpg(proc.pid, sig)``.

    Args:
        argv: The command (a list: no ``shell=True``).
        grace: Seconds between SIGTERM and SIGKILL when this process has died.
        popen: Passed to ``Popen`` (``cwd``, ``env``, ``stdout``, ...); the command inherits the
            tether's standard streams and environment.
    """
    if popen.get("shell") or isinstance(argv, str | bytes):
        raise TypeError("spawn_tethered takes a list of arguments, not a shell command")
    popen["start_new_session"] = True  # its own group: stopped as a whole
    if os.name != "posix":
        return subprocess.Popen(argv, **popen)
    return subprocess.Popen(tether_command(list(argv), grace), **popen)


def _group_members() -> list[int] | None:
    """Pids of the live processes in this process's group other than itself; None without
    ``/proc``."""
    if not os.path.exists("/proc/self/stat"):
        return None
    me, group, found = os.getpid(), os.getpgrp(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                state, _ppid, pgrp = f.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):  # gone meanwhile
            continue
        if int(pgrp) == group and state not in ("Z", "X"):
            found.append(int(name))
    return found


def _end_group(command: subprocess.Popen | None, grace: float, with_self: bool) -> None:
    """SIGTERM to this process's group, SIGKILL to what is left after ``grace`` seconds (to this
    process too when ``with_self``: its parent is gone, nobody waits for its status)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    group = os.getpgrp()
    with contextlib.suppress(OSError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        done = command is None or command.poll() is not None  # reaped: no zombie left
        members = _group_members()
        if members == [] or (members is None and done and not with_self):
            return
        time.sleep(0.1)
    if with_self:
        os.killpg(group, signal.SIGKILL)
    for _ in range(3):  # by pid, sparing this process; again for any forked meanwhile
        for pid in _group_members() or ():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if command is not None:
            command.poll()
        if not _group_members():
            return
        time.sleep(0.1)


def run(argv: list[str], parent: int, grace: float = GRACE_S) -> int:
    """Run ``argv`` until it exits or ``parent`` dies; the command's status (the tether's main)."""
    if os.getpgrp() != os.getpid():  # started without a group of its own: never end the caller's
        os.setpgid(0, 0)
    received: list[int] = []
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGCHLD):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    set_parent_death_signal(signal.SIGUSR1)  # a wake-up: the parent's pid is checked below
    if os.getppid() != parent:  # it died before the signal was armed
        return PARENT_GONE
    try:
        command = subprocess.Popen(argv, close_fds=False)  # fds 0-2 (and any passed) go on
    except OSError as exc:
        print(f"cannot run {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        return NOT_STARTED
    while command.poll() is None:
        with contextlib.suppress(InterruptedError):
            select.select([wake_r], [], [], POLL_S)
        with contextlib.suppress(BlockingIOError):
            os.read(wake_r, 512)
        while received:
            sig = received.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT) and command.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(command.pid, sig)
        if os.getppid() != parent:
            _end_group(command, grace, with_self=True)
            return PARENT_GONE
    code = command.returncode
    _end_group(command, grace, with_self=False)
    if code < 0:  # killed by a signal: end the same way, so that the spawner reads the same
        import resource  # POSIX only, as the tether

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGSEGV, SIGABRT: no core of the tether
        with contextlib.suppress(OSError, ValueError):  # SIGKILL: cannot be set
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def main(args: list[str]) -> int:
    """``tether.py --parent PID [--grace S] -- COMMAND...``"""
    parent, grace = None, GRACE_S
    while args and args[0] != "--":
        flag, value, *args = args
        if flag == "--parent":
            parent = int(value)
        elif flag == "--grace":
            grace = float(value)
        else:
            raise SystemExit(f"unknown option {flag}")
    if parent is None or len(args) < 2:
        raise SystemExit("usage: tether.py --parent PID [--grace SECONDS] -- COMMAND...")
    return run(args[1:], parent, grace)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
