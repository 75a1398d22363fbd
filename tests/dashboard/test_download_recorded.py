"""A download hands out the model the run's training logged (its param ``logged_model``), its
files checked against the digest recorded with it, never one logged into the run since."""

import json
import os

import pytest
import torch
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard import download_model, download_run
from dashboard.selection import DOWNLOAD_JSON
from mlpipeline_model import TORCH_ARTIFACT
from runs import recorded_model
from tests.conftest import log_untrained_run
from tests.tampering import log_over, other_module


def _recorded(uri: str, run_id: str) -> tuple[str, str]:
    return recorded_model(run_id, MlflowClient(uri).get_run(run_id).data.params)


def test_a_download_holds_the_model_its_training_logged_not_one_logged_since(
    settings, tiny_demo_data
):
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=81)
    log_over(uri, run_id, seed=82)  # runs:/<run_id>/model names this one from now on
    model_id, files = _recorded(uri, run_id)
    path = download_run(run_id, uri, settings.artifacts_dir)
    found = json.loads((path / DOWNLOAD_JSON).read_text())
    assert (found["model_uri"], found["logged_model_id"]) == (f"models:/{model_id}", model_id)
    assert found["files_digest"] == files


def test_a_download_is_recorded_with_the_uri_of_the_model_its_training_logged(
    settings, tiny_demo_data, store
):
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=83)
    log_over(uri, run_id, seed=84)
    got = download_model(run_id, settings, store, selected_by="tester")
    model_uri = f"models:/{_recorded(uri, run_id)[0]}"
    assert (got.model_uri, store.recent()[0]["model_uri"]) == (model_uri, model_uri)


def test_files_changed_in_the_store_are_not_handed_out_and_the_old_folder_stays(
    settings, tiny_demo_data, tmp_path
):
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=85)
    logged = MlflowClient(uri).get_logged_model(_recorded(uri, run_id)[0])
    weights = tmp_path / f"{TORCH_ARTIFACT}.pt"
    torch.save(other_module(uri, run_id, seed=86), weights)
    get_artifact_repository(logged.artifact_location).log_artifact(str(weights), "artifacts")
    old = settings.artifacts_dir / run_id
    old.mkdir(parents=True)
    (old / "keep.txt").write_text("previous download")
    with pytest.raises(InvalidInput, match=r"was not downloaded: its files' digest is .*restore"):
        download_run(run_id, uri, settings.artifacts_dir)
    assert os.listdir(settings.artifacts_dir) == [run_id]
    assert os.listdir(old) == ["keep.txt"]


def test_a_run_whose_recorded_model_is_gone_is_not_downloaded_in_its_place(
    settings, tiny_demo_data
):
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=87)
    model_id = _recorded(uri, run_id)[0]
    MlflowClient(uri).delete_logged_model(model_id)
    log_over(uri, run_id, seed=88)  # what runs:/ would hand out instead
    with pytest.raises(InvalidInput, match=rf"model {model_id} .* is gone: .*--from-run {run_id}"):
        download_run(run_id, uri, settings.artifacts_dir)
    assert not settings.artifacts_dir.exists() or os.listdir(settings.artifacts_dir) == []
