"""Explainer test fixtures: synthetic lesion images with masks and a model trained on them."""

from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pytorch
import numpy as np
import pytest
import torch

from common import ImageClassifier, Preprocessing, build_model
from dataloader import DEMO_CLASS_NAMES, synthesize
from dataloader.synth import render_lesion

SIZE = 32
N_CLASSES = 3


@dataclass
class Lesions:
    """Images ``N×3×H×W`` in ``[0, 1]``, labels ``N`` and lesion masks ``N×H×W`` (bool)."""

    x: torch.Tensor
    y: torch.Tensor
    masks: np.ndarray


def render(per_class: int, seed: int) -> Lesions:
    images, labels, masks = [], [], []
    for i in range(per_class):
        for k in range(N_CLASSES):
            image, mask = render_lesion(k, SIZE, np.random.default_rng([seed, k, i]))
            images.append(image)
            labels.append(k)
            masks.append(mask)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return Lesions(x, torch.tensor(labels), np.stack(masks))


@pytest.fixture(scope="session")
def lesions() -> tuple[Lesions, Lesions]:
    """(train, test) synthetic lesion images of the demo data set's generator."""
    return render(60, seed=1), render(8, seed=2)


@pytest.fixture(scope="session")
def trained_model(lesions) -> ImageClassifier:
    """A SmallCNN trained for a few CPU seconds on the synthetic lesions (eval mode)."""
    torch.manual_seed(0)
    train, _ = lesions
    model = build_model(
        "smallcnn",
        3,
        N_CLASSES,
        mean=train.x.mean(dim=(0, 2, 3)).tolist(),
        std=train.x.std(dim=(0, 2, 3)).tolist(),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        order = torch.randperm(len(train.y), generator=generator)
        for start in range(0, len(order), 30):
            batch = order[start : start + 30]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(train.x[batch]), train.y[batch])
            loss.backward()
            optimizer.step()
    return model.eval()


@dataclass
class LoggedRun:
    """A trained run in the test MLflow server, with its demo data set on disk."""

    uri: str
    run_id: str
    data_dir: Path
    no_model_run_id: str


@pytest.fixture(scope="session")
def logged_run(mlflow_server, trained_model, tmp_path_factory) -> LoggedRun:
    """``trained_model`` logged like the trainer does, plus a run that has no model."""
    data_dir = synthesize(
        tmp_path_factory.mktemp("explainer-data") / "demo",
        train_per_class=1,
        test_per_class=6,
        size=SIZE,
        seed=5,
    )
    pp = Preprocessing(
        image_size=(SIZE, SIZE),
        channels=3,
        class_names=list(DEMO_CLASS_NAMES),
        mean=trained_model.mean.flatten().tolist(),
        std=trained_model.std.flatten().tolist(),
    )
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("explainer-tests")
    with mlflow.start_run() as run:
        mlflow.log_params({"data_dir": str(data_dir), "model": "smallcnn"})
        mlflow.log_dict(pp.model_dump(mode="json"), "preprocessing.json")
        mlflow.pytorch.log_model(
            trained_model, name="model", serialization_format="pickle", pip_requirements=["torch"]
        )
    with mlflow.start_run() as bare:
        mlflow.log_params({"data_dir": str(data_dir)})
        mlflow.log_dict(pp.model_dump(mode="json"), "preprocessing.json")
    return LoggedRun(mlflow_server, run.info.run_id, data_dir, bare.info.run_id)
