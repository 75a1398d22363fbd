"""``common.available_cores``: the cores a process may run on, capped by its CPU quota."""

import os

import pytest

from common import available_cores

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, AFFINITY),  # v2, no quota
        ({"cpu.max": "150000 100000\n"}, min(AFFINITY, 2)),  # 1.5 CPUs: 2 threads
        ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU: still one
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, AFFINITY),
        ({}, AFFINITY),  # no cgroup files: the cores it may run on
        ({"cpu.max": "garbage\n"}, AFFINITY),
    ],
)
def test_the_cpu_quota_caps_the_cores(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert available_cores(tmp_path, tmp_path / "no-proc-cgroup") == expected


def test_the_quota_of_the_processs_own_cgroup_counts_without_a_cgroup_namespace(tmp_path):
    """Docker with --cgroupns=host, a systemd slice's CPUQuota: the quota is not at the root."""
    own = tmp_path / "system.slice" / "docker-1.scope"
    own.mkdir(parents=True)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "system.slice" / "cpu.max").write_text("max 100000\n")
    (own / "cpu.max").write_text("100000 100000\n")  # one CPU
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/system.slice/docker-1.scope\n")
    assert available_cores(tmp_path, proc) == 1
    (own / "cpu.max").write_text("max 100000\n")  # a quota above it caps it too
    (tmp_path / "system.slice" / "cpu.max").write_text("100000 100000\n")
    assert available_cores(tmp_path, proc) == 1
