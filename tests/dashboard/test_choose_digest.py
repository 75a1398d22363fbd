"""A choice registers only the model trained in the run, and records its weights' digest and its
files' digest on the version (``runs.digest``)."""

from unittest import mock

import mlflow
import pytest
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

import runs.packaging
from common import Conflict
from dashboard.choose import choose_run
from mlpipeline_model import TORCH_ARTIFACT
from runs import FILES_KEY, FilesRefused, files_digest, recorded_model
from tests.conftest import log_untrained_run
from tests.tampering import code_running_weights, log_over, weights_only


def test_the_version_carries_the_digest_the_run_recorded(settings, tiny_demo_data):
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=41)
    choice = choose_run(run_id, "digest", settings, allow_unevaluated=True)
    client = MlflowClient(uri)
    version = client.get_model_version(settings.model_name, choice.version)
    assert version.tags["weights_digest"] == client.get_run(run_id).data.params["weights_digest"]


def test_a_model_logged_into_a_run_after_its_training_is_not_the_one_chosen(
    settings, tiny_demo_data, store
):
    """The choice registers the model its training logged (the run's param logged_model),
    whatever else was logged into the run since."""
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=42)
    log_over(uri, run_id, seed=43)
    choice = choose_run(run_id, "looks fine", settings, store, allow_unevaluated=True)
    client = MlflowClient(uri)
    params = client.get_run(run_id).data.params
    version = client.get_model_version(settings.model_name, choice.version)
    assert version.source == f"models:/{recorded_model(run_id, params)[0]}"
    assert version.tags["weights_digest"] == params["weights_digest"]


def test_a_run_whose_model_was_logged_over_before_the_record_cannot_be_chosen(
    settings, tiny_demo_data, store
):
    uri = settings.mlflow_tracking_uri
    with mock.patch.object(runs.packaging, "_record_digest", weights_only):
        run_id = log_untrained_run(uri, tiny_demo_data, seed=46)
    log_over(uri, run_id, seed=47)
    with pytest.raises(Conflict, match=r"^the run's model is not the one trained in it: .*new run"):
        choose_run(run_id, "looks fine", settings, store, allow_unevaluated=True)
    assert not settings.run_id_file.exists() and store.recent() == []
    assert MlflowClient(uri).search_model_versions(f"name = '{settings.model_name}'") == []


def test_a_run_that_records_no_digest_is_chosen_as_before_and_its_version_gets_one(
    settings, tiny_demo_data
):
    uri = settings.mlflow_tracking_uri
    with mock.patch.object(runs.packaging, "_record_digest", lambda *_: None):
        run_id = log_untrained_run(uri, tiny_demo_data, seed=44)  # as trained before the digest
    client = MlflowClient(uri)
    assert "weights_digest" not in client.get_run(run_id).data.params
    choice = choose_run(run_id, "older run", settings, allow_unevaluated=True)
    tags = client.get_model_version(settings.model_name, choice.version).tags
    assert len(tags["weights_digest"]) == 64


def test_the_version_carries_the_digest_of_the_files_registered(
    settings, tiny_demo_data, store, tmp_path
):
    """Of the version's own files as MLflow hands them out, which the predictor checks before
    it loads them: the same as those of the logged model the choice loaded and checked."""
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=45)
    choice = choose_run(run_id, "files", settings, store, allow_unevaluated=True)
    mlflow.set_tracking_uri(uri)
    folder = tmp_path / "registered"  # tmp_path holds the store
    folder.mkdir()
    registered = mlflow.artifacts.download_artifacts(choice.model_uri, dst_path=str(folder))
    version = MlflowClient(uri).get_model_version(settings.model_name, choice.version)
    assert version.tags[FILES_KEY] == files_digest(registered)
    assert store.recent()[0]["lineage"][FILES_KEY] == version.tags[FILES_KEY]


def test_files_of_the_trained_model_changed_in_the_store_are_refused_before_loading(
    settings, tiny_demo_data, store, tmp_path
):
    """The choice loads (unpickles) the model where the signing key is held: files other than
    those the training logged never get that far."""
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, tiny_demo_data, seed=48)
    client = MlflowClient(uri)
    logged = client.get_logged_model(recorded_model(run_id, client.get_run(run_id).data.params)[0])
    marker, weights = tmp_path / "code-ran", tmp_path / f"{TORCH_ARTIFACT}.pt"
    code_running_weights(weights, marker)  # the weights' file, now a pickle that runs code
    get_artifact_repository(logged.artifact_location).log_artifact(str(weights), "artifacts")
    with pytest.raises(FilesRefused, match="its files' digest is"):
        choose_run(run_id, "looks fine", settings, store, allow_unevaluated=True)
    assert not marker.exists() and store.recent() == []
