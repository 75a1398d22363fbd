"""How many CPUs this process may use: the cores it may run on (``taskset``, a container's
cpuset), capped by the CPU quota of its cgroup and the cgroups above it (a Kubernetes
``limits.cpu``, ``docker run --cpus``, a systemd ``CPUQuota``). The quota matters: a pod limited
to 4 CPUs on a 64-core node sees 64 cores, and 64 threads in 4 CPUs' time spend most of it
throttled (CFS), the API's thread in the same cgroup with them."""

import math
import os
from pathlib import Path, PurePosixPath

CGROUP = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def _v2_folders(cgroup: Path, proc_cgroup: Path) -> list[Path]:
    """The process's cgroup v2 folder and those above it, up to the mount (``cgroup`` alone
    when the process's cgroup is not known: a container with its own cgroup namespace sees its
    cgroup as the root)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    own = next((line[3:] for line in lines if line.startswith("0::")), "/")
    parts = PurePosixPath(own).relative_to("/").parts if own.startswith("/") else ()
    return [cgroup.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _quota(folder: Path, v1: Path) -> float | None:
    """CPUs the quota of ``folder`` (cgroup v2 ``cpu.max``) or ``v1`` (``cpu.cfs_*``) allows;
    None when it has none or it cannot be read."""
    try:
        if (v2 := folder / "cpu.max").is_file():
            quota, period = v2.read_text().split()[:2]
        else:
            quota = (v1 / "cpu.cfs_quota_us").read_text().strip()
            period = (v1 / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return None
        return int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def available_cores(cgroup: Path = CGROUP, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The CPUs this process may use, at least 1 (a quota of 1.5 CPUs: 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    quotas = [_quota(folder, cgroup / "cpu") for folder in _v2_folders(cgroup, proc_cgroup)]
    if found := [q for q in quotas if q is not None]:
        cores = min(cores, max(1, math.ceil(min(found))))
    return cores
