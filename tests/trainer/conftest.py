"""Tiny demo data and a helper that builds trainer command lines against the test MLflow server."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from PIL import Image

from dataloader import synthesize


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """3 classes × 8 training (and 4 test) RGB images of 32 px."""
    return synthesize(tmp_path_factory.mktemp("tiny"), train_per_class=8, test_per_class=4, size=32)


def grey_folder(root: Path, size: tuple[int, int]) -> Path:
    """``root/{train,test}/{a,b}/`` with 10 and 2 random grey PNGs of ``size`` (H, W) per class."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 2)):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size, dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def artifact_json(uri: str, run_id: str, path: str) -> Any:
    """The JSON artifact ``path`` of run ``run_id``."""
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=uri)
    return json.loads(Path(local).read_text(encoding="utf-8"))


@pytest.fixture
def trainer_argv(tmp_path, mlflow_server, tiny_data) -> Callable[..., list[str]]:
    """``argv(*extra, data=..., experiment=...)``: a quick smallcnn run on one thread."""

    def argv(*extra: str, data: Path | None = None, experiment: str = "tests") -> list[str]:
        return [
            "--data-dir", str(data or tiny_data),
            "--experiment", experiment,
            "--tracking-uri", mlflow_server,
            "--checkpoint-dir", str(tmp_path / "checkpoints"),
            "--epochs", "2",
            "--ensemble", "1",
            "--batch-size", "16",
            "--threads", "1",
            "--no-progress",
            *extra,
        ]  # fmt: skip

    return argv
