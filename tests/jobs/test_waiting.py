"""The ``JobWatcher`` that ``?wait=`` requests share, on a real store and a real event loop."""

import asyncio

import pytest

from jobs import JobStore
from jobs.waiting import JobWatcher


async def _poke_then_stop(store: JobStore, turns: int) -> tuple[bool, list[asyncio.Task]]:
    """Poke a started watcher, let the loop run ``turns`` times, stop it; whether ``stop``
    returned within 3 s (it waits 5 s at most itself), and the watching tasks still there."""
    watcher = JobWatcher(store, interval=0.5)
    watcher.start()
    await asyncio.sleep(0.05)  # the task waits for a poke
    watcher.poke()  # as a job's progress or end does, from a runner thread
    for _ in range(turns):
        await asyncio.sleep(0)
    stopping = asyncio.create_task(watcher.stop())
    done, _ = await asyncio.wait({stopping}, timeout=3)
    left = [t for t in asyncio.all_tasks() if t.get_name() == "job-watcher" and not t.done()]
    return bool(done), left


# Python 3.11's asyncio.wait_for swallowed the cancellation when the poke's wake-up was being
# delivered (0-2 turns here): the task went on watching and stop() never returned.
@pytest.mark.parametrize("turns", [0, 1, 2])
def test_stop_right_after_a_poke_ends_the_watching_task(job_store, turns):
    returned, left = asyncio.run(_poke_then_stop(job_store, turns))
    assert returned and left == []
