"""Fixtures shared by every test package: a real MLflow server (``tests.servers``), free ports,
settings; and the session check that no test leaves a server or worker process behind."""

import gc
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from launcher import UVICORN_HTTP
from tests.servers import mlflow_command, serving

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
BREASTMNIST = SHARED_DATA / "medmnist" / "breastmnist.npz"

# Keep CPU tests predictable on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Every process a test starts inherits this mark (pass it on when you build an environment), so
# the session can find the ones left running, even those re-parented to init.
SESSION_MARK = "MLPIPELINE_TEST_SESSION"
os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)
LEAK_GRACE_S = 15.0


def session_processes() -> dict[int, str]:
    """Live processes (pid → command line) other than this one that carry this session's mark."""
    mark = f"{SESSION_MARK}={os.environ[SESSION_MARK]}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # exited, waiting to be reaped: not running
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if "resource_tracker" in cmdline:  # multiprocessing's helper: ends with this process
            continue
        found[int(entry.name)] = cmdline.strip()
    return found


# Seconds of test time per package (its tests' durations summed on the 2-core machine, 3 workers,
# 2026-12-07, after the MLflow client's Databricks probe was left out; the others take under 50 s
# each), handed to the workers longest first so that no long one starts last while the others
# idle (xdist's order by number of tests put e2e last). (Splitting a package builds its session
# fixtures twice: the dashboard's choice tests as a group of their own cost what the balance won.)
PACKAGE_SECONDS = {
    "dashboard": 383,
    "trainer": 340,
    "predictor": 245,
    "jobs": 203,
    "evaluator": 162,
    "e2e": 134,
    "benchmarks": 117,
}


def _package(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")  # tests/<package>/.../test_x.py
    return parts[1] if len(parts) > 2 else parts[-1]


def pytest_collection_modifyitems(config, items) -> None:
    """Longest packages first (a stable sort: within a package the order stays)."""
    items.sort(key=lambda item: -PACKAGE_SECONDS.get(_package(item.nodeid), 0))


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (``make test`` runs ``-n 3``), send each test package to one
    worker as a whole, so that its session fixtures (a trained model, the e2e
    service stack) are built once, not once per worker. (``--dist loadgroup`` would do this with
    marks, but with pytest 9 its renamed node ids do not reach the scheduler: measured, the e2e
    stack was built twice.) Packages go out in the collection's order
    (``pytest_collection_modifyitems``)."""
    from xdist.scheduler import LoadScopeScheduling

    class PackageScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _package(nodeid)

    config.option.loadscopereorder = False
    return PackageScheduling(config, log)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail the session when a test left a server or worker process running.

    Under pytest-xdist only the controller looks, after every worker has ended: all of them
    carry the same mark, so a worker would see the processes its peers are still using.
    """
    if not Path("/proc/self/environ").exists() or hasattr(session.config, "workerinput"):
        return
    deadline = time.monotonic() + LEAK_GRACE_S
    left = session_processes()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = session_processes()
    if not left:
        return
    listing = "\n".join(f"  pid {pid}: {cmd[:200]}" for pid, cmd in sorted(left.items()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = (
        f"{len(left)} process(es) started by the tests were still running {LEAK_GRACE_S:g} s "
        f"after the session ended:\n{listing}\nstop every process a test starts (and make "
        "worker processes exit with their parent)."
    )
    if reporter is not None:
        reporter.write_line(message, red=True)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def _temporary_files_under_basetemp(tmp_path_factory) -> None:
    """Temporary files of this process and of every process it starts (MLflow's downloads and
    locks, services' scratch folders) go under pytest's folder, which pytest prunes, not /tmp."""
    folder = tmp_path_factory.mktemp("tmp")
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Undo Streamlit's AppTest, which replaces ``sys.modules["__main__"]`` for good.

    A later test that spawns processes (multiprocessing re-imports ``__main__`` in the child)
    would otherwise run the dashboard script in every child.
    """
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def _unfreeze_heap():
    """Services started in this process freeze its heap out of the collector
    (``common.freeze_startup_heap``); give it back, so that the test process's cyclic garbage of
    earlier tests is still collected."""
    yield
    gc.unfreeze()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """A real MLflow tracking server (SQLite backend, served artifacts) on a free port."""
    state = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    argv, env = mlflow_command(state, port)
    uri = f"http://127.0.0.1:{port}"
    with serving(argv, uri + "/health", state / "server.log", cwd=state, env=env):
        yield uri


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
"""Headless Chromium on a closed network as root: no sandbox, no background connections."""


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; skipped when absent unless REQUIRE_BROWSER=1 (as in CI)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but chromium is missing: apt-get install chromium")
        pytest.skip("chromium is not installed")
    return path


@pytest.fixture
def unreachable_uri() -> str:
    """An http URI where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


QUICK_OUTAGE = "serverSelectionTimeoutMS=300"


def unreachable_mongo(userinfo: str = "") -> str:
    """A MongoDB URI where nothing listens, given up on after 0.3 s (its own option): the
    default 3 s, met several times by each test of an outage, added up to a minute of the suite."""
    return f"mongodb://{userinfo}127.0.0.1:{free_port()}/?{QUICK_OUTAGE}"


@pytest.fixture
def breastmnist() -> Path:
    """The real MedMNIST BreastMNIST file from ../shared (skips when the checkout lacks it)."""
    if not BREASTMNIST.exists():
        pytest.skip(f"{BREASTMNIST} not present")
    return BREASTMNIST


@dataclass(frozen=True)
class TrainedRun:
    """A real pipeline run: tiny demo data trained by the trainer into a real MLflow server."""

    run_id: str
    tracking_uri: str
    data_dir: Path
    experiment: str


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A tiny synthetic demo dataset (3 classes, 32×32) in the folder layout, with lesions.json."""
    from dataloader import synthesize

    out = tmp_path_factory.mktemp("datasets") / "demo"
    synthesize(out, train_per_class=40, test_per_class=12, size=32, seed=0)
    return out


@pytest.fixture(scope="session")
def data_root(demo_data) -> Path:
    """The DATA_DIR of the tests' services: the folder that holds the shared ``demo_data``."""
    return demo_data.parent


@pytest.fixture(scope="session")
def trained_run(mlflow_server, demo_data, tmp_path_factory) -> TrainedRun:
    """A two-member ensemble (the kind of model the trainer's defaults log) trained by the real
    trainer on ``demo_data`` and logged to ``mlflow_server``.

    Shared by the evaluator, explainer and dashboard tests; tests must not modify the run's
    training artifacts (evaluation and explanation artifacts may be added).
    """
    from trainer import train

    checkpoints = tmp_path_factory.mktemp("checkpoints")
    argv = [
        "--data-dir", str(demo_data), "--experiment", "tests", "--tracking-uri", mlflow_server,
        "--model", "smallcnn", "--epochs", "3", "--batch-size", "32", "--seed", "0",
        "--ensemble", "2", "--checkpoint-dir", str(checkpoints), "--no-progress",
    ]  # fmt: skip
    run_id = train(argv)
    return TrainedRun(run_id, mlflow_server, demo_data, "tests")


def log_untrained_run(uri: str, data_dir: Path, seed: int, point: dict | None = None,
                      decoding_version: int | None = None,
                      modalities: list[str] | None = None,
                      multi_frame: bool = False, ood: bool = False,
                      channels: int = 3) -> str:  # fmt: skip
    """A run with a pipeline model (untrained weights: serving does not care) of ``data_dir``'s
    classes at 32 px, fast to make; ``point``: the operating point the model carries;
    ``decoding_version``: the image decoding its training had (the current one: None), as a run
    trained by an older copy of mlpipeline_model records it; ``modalities``: the DICOM
    modalities it takes (None: every one); ``multi_frame``: it takes multi-frame DICOM files;
    ``ood``: it carries an out-of-distribution check (identity covariance around the origin,
    not fitted: what its answers hold, not how good the check is); ``channels``: 1 for a model of
    grey images."""
    import mlflow
    import numpy as np
    import torch

    from dataloader import load_dataset
    from mlpipeline_model import DECODING_VERSION
    from runs import OODReference, Preprocessing, build_model, log_classifier

    version = DECODING_VERSION if decoding_version is None else decoding_version
    ds = load_dataset(data_dir, image_size=32, channels=channels, splits=("train",),
                      val_fraction=0)  # fmt: skip
    pp = Preprocessing(image_size=(32, 32), channels=channels, class_names=ds.class_names,
                       mean=ds.stats["mean"], std=ds.stats["std"],
                       decoding_version=version, modalities=modalities,
                       multi_frame=multi_frame)  # fmt: skip
    torch.manual_seed(seed)
    model = build_model("smallcnn", channels, len(ds.class_names), pp.mean, pp.std).eval()
    if ood:
        width = model.features_and_logits(torch.zeros(1, channels, 32, 32))[0][0].shape[1]
        means = np.zeros((len(ds.class_names), width))
        model.ood_reference = OODReference.of([means], [np.eye(width)], 1e3, 0.99, 20,
                                              len(ds.train.labels)).state()  # fmt: skip
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("untrained-runs")
    with mlflow.start_run(run_name=f"untrained-{seed}") as run:
        mlflow.log_dict(pp.model_dump(mode="json"), "preprocessing.json")
        log_classifier(model, pp, "model", operating_point=point)  # the version travels with it
    return run.info.run_id


class LiveServer:
    """A uvicorn server in a thread of the test process, serving real HTTP on a free port."""

    def __init__(self, app) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, port=port, log_level="warning", http=UVICORN_HTTP[1])
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="session")
def outside_run(mlflow_server, data_root, tmp_path_factory) -> TrainedRun:
    """A run trained (one quick epoch) on data outside the services' ``DATA_DIR``.

    Its ``data_dir`` parameter names a folder that the evaluator, explainer and dashboard must
    refuse to read: anyone who can write a run to MLflow could otherwise make them publish it.
    """
    from dataloader import synthesize
    from trainer import train

    outside = tmp_path_factory.mktemp("outside") / "secret"
    assert not outside.resolve().is_relative_to(data_root.resolve())
    synthesize(outside, train_per_class=6, test_per_class=2, size=16, seed=1)
    argv = [
        "--data-dir", str(outside), "--experiment", "tests", "--tracking-uri", mlflow_server,
        "--model", "smallcnn", "--epochs", "1", "--batch-size", "16", "--seed", "0",
        "--ensemble", "1", "--checkpoint-dir", str(tmp_path_factory.mktemp("checkpoints")),
        "--no-progress",
    ]  # fmt: skip
    return TrainedRun(train(argv), mlflow_server, outside, "tests")


@pytest.fixture(scope="session")
def dead_pid() -> int:
    """The pid of a process that has ended: the owner of a scratch folder a killed one left."""
    from tests.leftovers import ended_pid

    return ended_pid()
