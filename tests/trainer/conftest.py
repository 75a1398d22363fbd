"""Tiny demo data and a helper that builds trainer command lines against the test MLflow server."""

from collections.abc import Callable
from pathlib import Path

import pytest

from dataloader import synthesize


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """3 classes × 8 training (and 4 test) RGB images of 32 px."""
    return synthesize(tmp_path_factory.mktemp("tiny"), train_per_class=8, test_per_class=4, size=32)


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
