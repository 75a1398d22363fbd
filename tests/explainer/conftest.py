"""Explainer test fixtures: synthetic lesion images with masks and a model trained on them."""

import tempfile
from dataclasses import dataclass

import mlflow
import numpy as np
import pytest
import torch

from dataloader.synth import render_lesion
from runs import ImageClassifier, build_model

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


def train_small_cnn(train: Lesions, epochs: int = 6) -> ImageClassifier:
    """A SmallCNN trained for a few CPU seconds on ``train`` (eval mode)."""
    torch.manual_seed(0)
    model = build_model(
        "smallcnn",
        3,
        N_CLASSES,
        mean=train.x.mean(dim=(0, 2, 3)).tolist(),
        std=train.x.std(dim=(0, 2, 3)).tolist(),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(train.y), generator=generator)
        for start in range(0, len(order), 30):
            batch = order[start : start + 30]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(train.x[batch]), train.y[batch])
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def trained_model(lesions) -> ImageClassifier:
    """A SmallCNN trained on the synthetic lesions' training images."""
    return train_small_cnn(lesions[0])


@pytest.fixture(scope="session")
def bare_run(trained_run) -> str:
    """A run like ``trained_run`` (params, preprocessing.json) but without a model."""
    client = mlflow.MlflowClient(trained_run.tracking_uri)
    source = client.get_run(trained_run.run_id)
    run = client.create_run(source.info.experiment_id, run_name="no-model")
    run_id = run.info.run_id
    for key in ("data_dir", "class_names", "image_size"):
        client.log_param(run_id, key, source.data.params[key])
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(trained_run.run_id, "preprocessing.json", tmp)
        client.log_artifact(run_id, path)
    client.set_terminated(run_id)
    return run_id
