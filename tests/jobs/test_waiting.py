"""The ``JobWatcher`` that ``?wait=`` requests share, on a real store and a real event loop."""

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import pytest
import requests
from fastapi import FastAPI

from jobs import JobStore
from jobs.waiting import JobWatcher
from tests.conftest import LiveServer
from tests.jobs.conftest import JOB_RELEASED, make_toy_app, wait_until
from tests.rawhttp import open_request


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


@contextlib.contextmanager
def _held_job_service(settings) -> Iterator[tuple[FastAPI, str]]:
    """The toy app over HTTP, and ``JOB_RELEASED`` set at the end: its ``held`` jobs run until
    then, so a wait is never ended by its job."""
    JOB_RELEASED.clear()
    app = make_toy_app(settings)
    with LiveServer(app) as live:
        try:
            yield app, live.url
        finally:
            JOB_RELEASED.set()  # before the server stops: its shutdown waits for the job


def _waits_left_after_hang_up(app, url: str, method: str, path: str, body: dict | None) -> int:
    """Send ``method path`` (a ?wait=600 long poll) over a socket, see it wait, hang up, and
    return how many waits the app's watcher still holds 5 s later (at most)."""
    watcher = app.state.jobs.watcher
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
    sock = open_request(url, method, path, headers, data)
    wait_until(lambda: watcher.waiting == 1, 10, "the long poll waits")
    sock.close()
    deadline = time.monotonic() + 5
    while watcher.waiting and time.monotonic() < deadline:
        time.sleep(0.05)
    return watcher.waiting


def test_a_submission_that_waits_stops_waiting_when_its_client_hangs_up(embedded_settings):
    with _held_job_service(embedded_settings) as (app, url):
        body = {"run_id": "r1", "x": 1, "held": True}
        assert _waits_left_after_hang_up(app, url, "POST", "/toy?wait=600", body) == 0


def test_a_job_poll_that_waits_stops_waiting_when_its_client_hangs_up(embedded_settings):
    with _held_job_service(embedded_settings) as (app, url):
        job = requests.post(f"{url}/toy", json={"run_id": "r1", "x": 1, "held": True}).json()
        # running, held: a poll waits for a change, and queued → running would be one
        running = f"{url}/jobs/{job['job_id']}"
        wait_until(lambda: requests.get(running).json()["status"] == "running", 30, "the start")
        path = f"/jobs/{job['job_id']}?wait=600"
        assert _waits_left_after_hang_up(app, url, "GET", path, None) == 0


def test_a_long_poll_whose_client_stays_gets_the_finished_job(embedded_settings):
    app = make_toy_app(embedded_settings)
    with LiveServer(app) as live:
        body = {"run_id": "r1", "x": 2, "sleep": 1}
        answer = requests.post(f"{live.url}/toy?wait=600", json=body, timeout=60)
    assert answer.status_code == 200 and answer.json()["result"]["y"] == 4
