"""What a run records of how it was made (``trainer.provenance``) and the CPU thread count it
trains with (``trainer.distributed.cpu_threads``); no training here."""

import os

from trainer.distributed import DistInfo, cpu_threads


def test_threads_follow_omp_num_threads_unless_given(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads(0, DistInfo()) == 3  # it was overridden by the core count
    assert cpu_threads(0, DistInfo(world_size=2, local_world_size=2)) == 3
    assert cpu_threads(2, DistInfo()) == 2  # --threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")
    assert cpu_threads(0, DistInfo()) == 4
    cores = len(os.sched_getaffinity(0))
    for value in ("", "0", "many"):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert cpu_threads(0, DistInfo()) == cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpu_threads(0, DistInfo(world_size=2, local_world_size=2)) == max(1, cores // 2)
