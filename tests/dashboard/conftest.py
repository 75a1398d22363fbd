"""Real runs on the real MLflow server for the dashboard tests, and the page under AppTest.

``dashboard_runs`` builds, once per session, an experiment holding what the dashboard must cope
with: a pipeline run (params, per-epoch metrics, preprocessing.json, dataset_stats.json and a
PyTorch model on the synthetic demo data, then evaluated and explained by the real evaluator and
explainer), a scikit-learn autologged run, a failed run, a nested run, a run with 2,000 metric
steps, and a run with long params and unicode names.
"""

import contextlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pytest
import streamlit as st
import torch
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from streamlit.components.v2 import manifest_scanner
from streamlit.testing.v1 import AppTest

from common import Settings, get_settings
from jobs import SelectionStore, get_database
from launcher import EVALUATOR
from runs import DECODING_VERSION, Preprocessing, build_model, contract, log_classifier
from tests.conftest import ROOT, free_port, serving

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "dashboard.py")
# Each AppTest scans every installed distribution for Streamlit components (~15 % of these tests'
# CPU); what is installed does not change in a session, so it is scanned once.
_scan = cache(manifest_scanner.scan_component_manifests)
manifest_scanner.scan_component_manifests = lambda: list(_scan())  # a list of its own each time
EXPERIMENT = "dashboard-tests"
UNICODE_NAME = "Лёгкий запуск — 测试 🩺"
LONG_VALUE = "x" * 5000


def _pipeline_run(uri: str, data_dir: Path, name: str, size: int = 32) -> str:
    """A run laid out like the trainer's (see docs/contracts.md), with a real model taking
    ``size``×``size`` images."""
    from dataloader import load_dataset

    ds = load_dataset(data_dir, image_size=size, channels=3)
    model = build_model("smallcnn", 3, len(ds.class_names), ds.stats["mean"], ds.stats["std"])
    model.eval()
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(
            {
                "model": "smallcnn",
                "epochs": 3,
                "batch_size": 16,
                "optimizer": "adamw",
                "lr": 0.001,
                "seed": 0,
                "data_dir": str(data_dir),
                "dataset_source": str(data_dir),
                "dataset_hash": ds.content_hash,
                "class_names": json.dumps(ds.class_names),
                "num_classes": len(ds.class_names),
                "image_size": size,
                "channels": 3,
                "data_n_train": len(ds.train.labels),
                "data_n_val": len(ds.val.labels) if ds.val is not None else 0,
                "data_n_test": len(ds.test.labels),
            }
        )
        for epoch in range(3):
            mlflow.log_metrics(
                {
                    "train_loss": 1.0 / (epoch + 1),
                    "val_loss": 1.2 / (epoch + 1),
                    "val_accuracy": 0.5 + 0.1 * epoch,
                    "val_auc": 0.6 + 0.1 * epoch,
                    "lr": 0.001,
                },
                step=epoch,
            )
        mlflow.log_metrics({"best_val_auc": 0.8, "best_epoch": 2})
        mlflow.log_dict(ds.stats, "dataset_stats.json")
        preprocessing = {
            "image_size": [size, size],
            "channels": 3,
            "class_names": ds.class_names,
            "mean": ds.stats["mean"],
            "std": ds.stats["std"],
            "decoding_version": DECODING_VERSION,  # as the trainer records it
        }
        mlflow.log_dict(preprocessing, "preprocessing.json")
        log_classifier(model, Preprocessing.model_validate(preprocessing), "model")
        mlflow.set_tag("pipeline.stage", "trained")
        mlflow.set_tag(contract.TEST_DATA_TAG, ds.split_hashes["test"])
    return run.info.run_id


def _sklearn_run() -> str:
    from sklearn.linear_model import LogisticRegression

    mlflow.sklearn.autolog(log_input_examples=False, silent=True)
    try:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 3))
        y = (x[:, 0] > 0).astype(int)
        with mlflow.start_run(run_name="sklearn-autolog") as run:
            LogisticRegression(max_iter=50).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    return run.info.run_id


def _edge_runs(client: MlflowClient, experiment_id: str) -> dict[str, str]:
    runs = {}
    with mlflow.start_run(run_name="parent-sweep") as parent:
        mlflow.log_param("sweep", "lr")
        with mlflow.start_run(run_name="child-trial", nested=True) as child:
            mlflow.log_param("lr", 0.01)
            mlflow.log_metric("val_auc", 0.7)
    runs["parent"], runs["child"] = parent.info.run_id, child.info.run_id
    failed = client.create_run(experiment_id, run_name="crashed-run")
    client.log_param(failed.info.run_id, "model", "resnet18")
    client.set_terminated(failed.info.run_id, status="FAILED")
    runs["failed"] = failed.info.run_id
    steps = client.create_run(experiment_id, run_name="long-history")
    now = int(time.time() * 1000)
    metrics = [Metric("train_loss", 1.0 / (1 + i), now + i, i) for i in range(2000)]
    for start in range(0, 2000, 1000):
        client.log_batch(steps.info.run_id, metrics=metrics[start : start + 1000])
    client.set_terminated(steps.info.run_id)
    runs["steps"] = steps.info.run_id
    odd = client.create_run(experiment_id, run_name=UNICODE_NAME)
    client.log_batch(
        odd.info.run_id,
        params=[Param("notes", LONG_VALUE), Param("größe", "groß")],
        metrics=[Metric("accuracy_ü", 0.5, now, 0)],
    )
    client.log_text(odd.info.run_id, "hello ✓\n", "notes/readme.txt")
    client.set_terminated(odd.info.run_id)
    runs["unicode"] = odd.info.run_id
    return runs


@pytest.fixture(scope="session")
def tiny_demo_data(tmp_path_factory) -> Path:
    """The synthetic demo dataset, tiny (3 classes, a few 32 px images each)."""
    from dataloader import synthesize

    return synthesize(
        tmp_path_factory.mktemp("demo") / "data", train_per_class=6, test_per_class=4, size=32
    )


@pytest.fixture(scope="session")
def dashboard_runs(mlflow_server, tiny_demo_data) -> dict[str, str]:
    """Run ids by role (pipeline, sklearn, parent, child, failed, steps, unicode) + experiment,
    and the pipeline run's current result folders (``evaluation``, ``explanation``)."""
    from evaluator import evaluate_run
    from explainer import explain_run

    torch.set_num_threads(1)
    mlflow.set_tracking_uri(mlflow_server)
    client = MlflowClient(mlflow_server)
    experiment_id = mlflow.set_experiment(EXPERIMENT).experiment_id
    runs = {"experiment": experiment_id, "sklearn": _sklearn_run()}
    runs.update(_edge_runs(client, experiment_id))
    runs["pipeline"] = _pipeline_run(mlflow_server, tiny_demo_data, "smallcnn-evaluated")
    evaluated = evaluate_run(runs["pipeline"], mlflow_server, batch_size=32)
    explained = explain_run(
        runs["pipeline"], mlflow_server, n_samples=2, methods=["gradcam", "shap"]
    )
    runs["evaluation"], runs["explanation"] = evaluated["artifact_path"], explained["artifact_path"]
    # A second pipeline run never evaluated nor explained (the newest run: selected first).
    runs["bare"] = _pipeline_run(mlflow_server, tiny_demo_data, "smallcnn-bare")
    return runs


@pytest.fixture
def page_env(mlflow_server, tiny_demo_data, tmp_path, monkeypatch) -> Iterator[Path]:
    """Settings for the page (tracking URI, artifacts and store in a tmp dir, DATA_DIR holding
    the runs' data set); cwd = tmp_path."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("DATA_DIR", str(tiny_demo_data.parent))
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("STORE_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("MONGO_URI", raising=False)
    monkeypatch.setenv("EVALUATOR_URL", os.environ.get("TEST_NO_SERVICE", "http://127.0.0.1:9"))
    monkeypatch.setenv("EXPLAINER_URL", "http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()  # the page reads the process settings once, as a server would
    yield tmp_path
    get_settings.cache_clear()


def open_page(run_id: str | None = None, tab: str | None = None, **state) -> AppTest:
    """Run the page under AppTest with ``run_id`` selected and ``tab`` open."""
    st.cache_data.clear()
    get_settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=120)
    if run_id:
        at.session_state["run_id"] = run_id
    if tab:
        at.session_state["tab"] = tab
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def page_text(at: AppTest) -> str:
    """All visible text of the page (titles, markdown, captions, alerts, table cells)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "code", "text"):
        parts += [str(e.value) for e in at.get(kind)]
    for kind in ("info", "warning", "error", "success", "exception"):
        parts += [str(e.value) for e in at.get(kind)]
    for frame in at.dataframe:
        parts.append(frame.value.to_string())
    return "\n".join(parts)


@pytest.fixture(scope="session")
def evaluator_service(mlflow_server, tiny_demo_data, tmp_path_factory):
    """The real evaluator (uvicorn) on a free port, requiring a Bearer token."""
    from tests.conftest import free_port, serving

    state = tmp_path_factory.mktemp("evaluator")
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "DATA_DIR": str(tiny_demo_data.parent),
        "STORE_DIR": str(state / "store"),
        "PIPELINE_API_TOKEN": "s3cret-test-token-0123456789abcdef",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("MONGO_URI", None)
    root = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-m", *EVALUATOR.render(host="127.0.0.1", port=port)]  # uvicorn
    url = f"http://127.0.0.1:{port}"
    with serving(argv, url + "/health", state / "evaluator.log", cwd=root, env=env):
        yield url


@pytest.fixture
def fresh_run(mlflow_server, tiny_demo_data, dashboard_runs) -> str:
    """A new, never evaluated pipeline run (for tests that evaluate it)."""
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(EXPERIMENT)
    return _pipeline_run(mlflow_server, tiny_demo_data, "smallcnn-fresh")


@pytest.fixture(scope="session")
def threshold_run(mlflow_server, tiny_demo_data, tmp_path_factory) -> dict[str, str]:
    """A two-class run of the real trainer with a threshold chosen on validation for a target
    sensitivity, evaluated by the real evaluator, in its own experiment: run_id, experiment."""
    import shutil

    from evaluator import evaluate_run
    from trainer import train

    data = tmp_path_factory.mktemp("two-class") / "data"
    for split in ("train", "test"):
        for cls in ("melanoma", "nevus"):
            shutil.copytree(tiny_demo_data / split / cls, data / split / cls)
    run_id = train(
        ["--data-dir", str(data), "--experiment", "dashboard-threshold",
         "--tracking-uri", mlflow_server, "--checkpoint-dir", str(tmp_path_factory.mktemp("ck")),
         "--epochs", "1", "--batch-size", "8", "--threads", "1", "--no-progress",
         "--val-fraction", "0.3", "--target-sensitivity", "0.8", "--positive-class", "melanoma"]
    )  # fmt: skip
    evaluate_run(run_id, mlflow_server, batch_size=32)
    experiment = MlflowClient(mlflow_server).get_run(run_id).info.experiment_id
    return {"run_id": run_id, "experiment": experiment}


def _leakage_tags(data: Path) -> dict[str, str]:
    """The tags the trainer sets on a run of ``data`` (``mlflow_run.log_setup``): its leakage
    warning and test overlap, when it has them."""
    from dataloader import load_dataset
    from trainer.data_warnings import leakage_warning, overlap_tag

    stats = load_dataset(data, image_size=32, channels=3, allow_group_overlap=True).stats
    tags = {contract.LEAKAGE_TAG: leakage_warning(stats)}
    tags[contract.TEST_OVERLAP_TAG] = overlap_tag(stats)
    return {key: value for key, value in tags.items() if value}


@pytest.fixture(scope="session")
def leakage_tags(tiny_demo_data, tmp_path_factory) -> dict[str, dict[str, str]]:
    """The trainer's tags of runs on copies of the demo data, by the real dataloader's leakage
    check: ``test`` (a test image copied into train), ``train_val`` (a val split holding a copy
    of a train image of each class; the test split untouched) and ``patients`` (a groups.csv
    putting a test image of each class and a train image in one patient's group)."""
    import shutil

    found = {}
    for kind in ("test", "train_val", "patients"):
        data = tmp_path_factory.mktemp(f"leak-{kind}") / "data"
        shutil.copytree(tiny_demo_data, data)
        shared = []  # one patient's images, in train and in test
        for cls in sorted(p.name for p in (data / "train").iterdir()):
            if kind == "test":
                image = sorted((data / "test" / cls).iterdir())[0]
                shutil.copy(image, data / "train" / cls / f"leaked-{image.name}")
            elif kind == "train_val":
                (data / "val" / cls).mkdir(parents=True)
                image = sorted((data / "train" / cls).iterdir())[0]
                shutil.copy(image, data / "val" / cls / f"copy-{image.name}")
            else:
                shared += [sorted((data / split / cls).iterdir())[0] for split in ("train", "test")]
        if kind == "patients":  # every other image its own patient
            images = sorted(p for split in ("train", "test") for p in (data / split).rglob("*"))
            rows = [f"{p.relative_to(data).as_posix()},{'p0' if p in shared else n}"
                    for n, p in enumerate(images) if p.is_file()]  # fmt: skip
            (data / "groups.csv").write_text("\n".join(["file,group", *rows]) + "\n")
        found[kind] = _leakage_tags(data)
    return found


def leak(uri: str, run_id: str, near: str | None = "train/test", groups: str | None = None) -> None:
    """Give the run's dataset_stats.json two images of the second split of ``near`` with a near
    duplicate in its first, and two patients (groups) in both splits of ``groups``."""
    client = MlflowClient(uri)
    stats = json.loads(Path(client.download_artifacts(run_id, "dataset_stats.json")).read_text())
    if near:
        first, second = near.split("/")
        pair = {"a": f"{first}/a/1.png", "b": f"{second}/a/1.png"}
        stats["leakage"]["near"] = {near: {"count": 2, "examples": [pair]}}
    if groups:
        stats["groups"] = {"per_split": {"train": 9, "test": 4},
                           "overlap": {groups: {"count": 2, "examples": ["p1", "p2"]}}}  # fmt: skip
    client.log_dict(run_id, stats, "dataset_stats.json")


def other_test_data(tiny_demo_data: Path, folder: Path) -> Path:
    """``folder`` holding the tiny data set's test split less one image: other test data than
    a run's own, which a leak of the run's own split does not concern."""
    shutil.copytree(tiny_demo_data / "test", folder / "test")
    next((folder / "test").rglob("*.png")).unlink()
    return folder


@pytest.fixture
def settings(mlflow_server, tmp_path) -> Settings:
    """Settings of a choice: its own registered model name, run_id.txt and store, so that
    tests do not see each other."""
    return Settings(
        _env_file=None,
        mlflow_tracking_uri=mlflow_server,
        artifacts_dir=tmp_path / "artifacts",
        store_dir=tmp_path / "store",
        mongo_uri=None,
        run_id_file=tmp_path / "shared" / "run_id.txt",
        model_name=f"classifier-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
def store(settings) -> SelectionStore:
    return SelectionStore(get_database(settings))


def old_evaluation(uri: str, run_id: str, data_dir: str, tta: str = "none") -> str:
    """Publish an evaluation of ``data_dir``'s test split (with test-time augmentation ``tta``)
    as the evaluator before ``own_data`` (commit fb34404) wrote it: a ``metrics.json`` without
    that field and the path tag alone (no basis tags); its folder."""

    client = MlflowClient(uri)
    folder = f"evaluation/old-{uuid.uuid4().hex[:8]}"
    report = {"n_samples": 4, "class_names": ["a", "b"], "confusion_matrix": [[1, 1], [1, 1]],
              "overall": {"accuracy": {"value": 0.5, "ci_low": 0.1, "ci_high": 0.9}},
              "run_id": run_id, "data_dir": data_dir, "dataset_hash": "old-hash",
              "tta": tta}  # fmt: skip
    client.log_dict(run_id, report, f"{folder}/{contract.METRICS_JSON}")
    client.log_metric(run_id, "eval_accuracy", 0.5)
    client.set_tag(run_id, contract.EVALUATION_PATH_TAG, folder)
    return folder


@contextlib.contextmanager
def streamlit_script(source: str, folder: Path) -> Iterator[str]:
    """A Streamlit app of ``source`` (a script importing the repository's packages) served from
    ``folder`` on a free port, for a real browser; yields its URL, stopped after."""
    script = folder / "app.py"
    script.write_text(source)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true",
            "--browser.gatherUsageStats", "false"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(argv, url + "/_stcore/health", folder / "streamlit.log", cwd=ROOT, env=env):
        yield url
