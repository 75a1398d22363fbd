"""How many CPUs this process may use: the cores it may run on (``taskset``, a container's
cpuset), capped by the container's CPU quota (a Kubernetes ``limits.cpu``, ``docker run
--cpus``). The quota matters: a pod limited to 4 CPUs on a 64-core node sees 64 cores, and 64
threads in 4 CPUs' time spend most of it throttled (CFS), the API's thread in the same cgroup
with them."""

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _quota(cgroup: Path) -> float | None:
    """CPUs the cgroup's quota allows (cgroup v2 ``cpu.max``, else v1 ``cpu.cfs_*``); None when
    there is none or it cannot be read."""
    try:
        if (v2 := cgroup / "cpu.max").is_file():
            quota, period = v2.read_text().split()[:2]
        else:
            v1 = cgroup / "cpu"
            quota = (v1 / "cpu.cfs_quota_us").read_text().strip()
            period = (v1 / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return None
        return int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def available_cores(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may use, at least 1 (a quota of 1.5 CPUs: 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    if (quota := _quota(cgroup)) is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return cores
