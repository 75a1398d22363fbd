"""Fixtures for the store, job runner and job-service tests.

``store_settings`` is parametrized over the backends: the embedded store always, a real MongoDB
when ``MONGO_URI`` is set (a unique database per test, dropped afterwards).
"""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from common import InvalidInput, Settings
from jobs import (
    JobOut,
    JobService,
    JobStore,
    WaitSeconds,
    create_job_app,
    get_database,
    get_job_service,
)
from tests.conftest import ROOT, LiveServer, free_port
from tests.servers import wait_http

MONGO_URI = os.environ.get("MONGO_URI")


def make_settings(tmp_path, backend: str = "embedded", **overrides) -> Settings:
    """Settings for one backend; no ``.env`` file and no environment leaks into tests."""
    values = {
        "store_dir": tmp_path / "store",
        "mongo_uri": None,
        "mongo_db": "mlpipeline",
        "mlflow_tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
        "pipeline_api_token": None,
    }
    if backend == "mongo":
        values.update(mongo_uri=MONGO_URI, mongo_db=f"mlpipeline_test_{uuid.uuid4().hex[:12]}")
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(
    params=[
        "embedded",
        pytest.param(
            "mongo",
            marks=[
                pytest.mark.mongo,
                pytest.mark.skipif(not MONGO_URI, reason="set MONGO_URI to test a real MongoDB"),
            ],
        ),
    ]
)
def store_settings(request, tmp_path) -> Iterator[Settings]:
    """Settings of each store backend."""
    settings = make_settings(tmp_path, request.param)
    yield settings
    if settings.mongo_uri:
        get_database(settings).client.drop_database(settings.mongo_db)


@pytest.fixture
def db(store_settings):
    return get_database(store_settings)


@pytest.fixture
def job_store(db) -> JobStore:
    return JobStore(db)


# A toy job service: inputs {"x": int, "sleep": seconds}; x < 0 is the user's mistake, x == 0 a
# bug in the handler, anything else succeeds with {"y": 2x}.


class ToyIn(BaseModel):
    run_id: str
    x: int
    sleep: float = 0.0
    force: bool = False
    hung_check: bool = False  # the request check waits for CHECK_RELEASED (a hung MLflow)
    held: bool = False  # the job runs until JOB_RELEASED is set


CHECK_RELEASED = threading.Event()
JOB_RELEASED = threading.Event()
CHECKED: list[dict] = []  # the bodies whose request check ran, in order


toy_router = APIRouter()


@toy_router.post("/toy", response_model=JobOut, status_code=202)
async def toy(
    body: ToyIn,
    response: Response,
    http: Request,
    jobs: JobService = Depends(get_job_service),
    wait: WaitSeconds = 0,
) -> JobOut:
    inputs = {"x": body.x, "sleep": body.sleep, **({"held": True} if body.held else {})}

    def check() -> dict:
        CHECKED.append(body.model_dump())
        if body.hung_check and not CHECK_RELEASED.wait(60):
            raise TimeoutError("the test never released the hung check")
        return inputs

    request = body.model_dump(exclude={"force"})
    return await jobs.respond(body.run_id, check, body.force, wait, response, request, http)


@toy_router.get("/boom")
def boom() -> dict:
    raise RuntimeError("a bug in a route")


def toy_handler(job: dict) -> dict:
    time.sleep(job["inputs"].get("sleep", 0))
    if job["inputs"].get("held") and not JOB_RELEASED.wait(60):
        raise TimeoutError("the test never released the held job")
    x = job["inputs"]["x"]
    if x < 0:
        raise InvalidInput(f"x must not be negative, got {x}")
    return {"y": 2 * x, "inverse": 1 / x}


def make_toy_app(settings: Settings, **runner_options):
    options = {"poll_interval": 0.05, "heartbeat_interval": 0.2, **runner_options}
    return create_job_app("toy", "Toy service", toy_router, toy_handler, settings, options)


@pytest.fixture
def embedded_settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def toy_server(embedded_settings) -> Iterator[str]:
    """Base URL of the toy job service on the embedded store, over real HTTP."""
    with LiveServer(make_toy_app(embedded_settings)) as live:
        yield live.url


@pytest.fixture
def effect_service(tmp_path) -> Iterator[Callable[..., tuple[subprocess.Popen, str]]]:
    """Start ``tests.jobs.effect_app`` processes on one store: ``start(stale_after, **env)`` →
    ``(process, url)``; all are stopped (and their workers with them) at teardown."""
    procs: list[subprocess.Popen] = []
    base = {
        **os.environ,
        "STORE_DIR": str(tmp_path / "store"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "JOB_RETRY_DELAY_S": "0",
    }
    base.pop("MONGO_URI", None)
    base.pop("PIPELINE_API_TOKEN", None)

    def start(stale_after: float = 30.0, **env: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        log = open(tmp_path / f"service-{port}.log", "w")  # noqa: SIM115 - closed with the test
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.jobs.effect_app", str(port), str(stale_after)],
            cwd=ROOT,
            env={**base, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health", timeout=120, proc=proc)
        return proc, url

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def children(pid: int) -> set[int]:
    """Pids of the live processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], object], timeout: float, what: str):
    """Poll ``condition`` until it is truthy (its value), or fail saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")
