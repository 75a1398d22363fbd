"""Ways a run's or a version's model stops being the one trained in the run (``runs.digest``):
another model logged into the run without its digest (as a trainer from before the digest, or
a hand-made ``mlflow.pyfunc.log_model``, would), and the weights file replaced in the store."""

import os
import tempfile
from pathlib import Path
from unittest import mock

import mlflow
import torch
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

import runs.packaging
from mlpipeline_model import TORCH_ARTIFACT
from runs import MODEL_RECORD_KEY, build_model, load_preprocessing, log_classifier


def other_module(uri: str, run_id: str, seed: int) -> torch.nn.Module:
    """An untrained module that fits ``run_id``'s preprocessing, from ``seed``."""
    pp = load_preprocessing(MlflowClient(uri), run_id)
    torch.manual_seed(seed)
    return build_model("smallcnn", pp.channels, len(pp.class_names), pp.mean, pp.std).eval()


def log_over(uri: str, run_id: str, seed: int) -> None:
    """Log another model into ``run_id`` as ``model``, without recording its digest: what
    ``runs:/<run_id>/model`` gives from then on."""
    module = other_module(uri, run_id, seed)
    pp = load_preprocessing(MlflowClient(uri), run_id)
    mlflow.set_tracking_uri(uri)
    with (
        mock.patch.object(runs.packaging, "_record_digest", lambda *_: None),
        mlflow.start_run(run_id=run_id),
    ):
        log_classifier(module, pp, "model")


def replace_weights(uri: str, name: str, version: str, module: torch.nn.Module) -> None:
    """Overwrite the weights file (``torch_model.pt``) of version ``version`` of ``name`` where
    the artifact store keeps it with ``module``, as someone with write access to the store could."""
    mlflow.set_tracking_uri(uri)
    location = MlflowClient(uri).get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{TORCH_ARTIFACT}.pt"
        torch.save(module, path)
        get_artifact_repository(location).log_artifact(str(path), "artifacts")


class _MakesFolder:
    """Pickles as a call of ``os.mkdir(path)``: whoever unpickles it makes the folder."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def code_running_weights(path: Path, marker: Path) -> None:
    """Write at ``path`` a weights file that, when unpickled (loaded), makes the folder
    ``marker``: whether it exists afterwards tells whether the model's code ran."""
    torch.save(_MakesFolder(str(marker)), path)


_record = runs.packaging._record_digest


def weights_only(key: str, *rest) -> None:
    """``log_classifier``'s record as trained from 2026-12-06 to 2026-12-07 (patch
    ``runs.packaging._record_digest`` with it, and log the run without the trainer's marker):
    the weights' digests, not which model it logged nor its files."""
    if key != MODEL_RECORD_KEY:
        _record(key, *rest)
