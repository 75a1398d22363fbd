"""The digest of a model's weights ties the model of a run to its training (``runs.digest``)."""

import io
from unittest import mock

import mlflow
import pytest
import torch
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

import runs.packaging
from common import Conflict
from mlpipeline_model import TORCH_ARTIFACT
from runs import (
    Ensemble,
    FilesRefused,
    build_model,
    files_digest,
    find_logged_model,
    load_classifier,
    load_model,
    load_preprocessing,
    log_classifier,
    model_info,
    recorded_model,
    weights_digest,
)
from tests.conftest import log_untrained_run
from tests.tampering import code_running_weights, log_over, other_module, weights_only


def _reloaded(module: torch.nn.Module) -> torch.nn.Module:
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_the_digest_is_of_the_weights_alone_for_a_classifier_and_an_ensemble():
    torch.manual_seed(0)
    single = build_model("smallcnn", 3, 3).eval()
    ensemble = Ensemble([build_model("smallcnn", 3, 3), build_model("smallcnn", 3, 3)]).eval()
    for module in (single, ensemble):
        digest = weights_digest(module)
        assert len(digest) == 64 and int(digest, 16) >= 0
        assert weights_digest(_reloaded(module)) == digest  # pickled and loaded back
        assert weights_digest(module.train()) == digest  # the mode is no weight
    changed = _reloaded(single)
    with torch.no_grad():
        changed.head.bias[0] += 1e-6
    assert weights_digest(changed) != weights_digest(single)
    assert weights_digest(ensemble) != weights_digest(single)


def test_the_run_records_the_digest_of_the_model_it_logs(mlflow_server, demo_data):
    run_id = log_untrained_run(mlflow_server, demo_data, seed=31)
    digest = MlflowClient(mlflow_server).get_run(run_id).data.params["weights_digest"]
    uri = f"runs:/{run_id}/model"
    assert model_info(uri).metadata["weights_digest"] == digest
    mlflow.set_tracking_uri(mlflow_server)
    assert weights_digest(load_classifier(uri)) == digest  # the served form
    assert weights_digest(load_model(run_id, mlflow_server)) == digest  # the evaluator's


def test_the_run_records_the_id_and_files_of_the_model_it_logs(mlflow_server, demo_data, tmp_path):
    run_id = log_untrained_run(mlflow_server, demo_data, seed=36)
    client = MlflowClient(mlflow_server)
    model_id, files = recorded_model(run_id, client.get_run(run_id).data.params)
    assert find_logged_model(client, client.get_run(run_id)).model_id == model_id
    mlflow.set_tracking_uri(mlflow_server)
    local = mlflow.artifacts.download_artifacts(f"models:/{model_id}", dst_path=str(tmp_path))
    assert files_digest(local) == files


def test_a_model_logged_into_a_trained_run_is_refused_and_the_trained_one_stays(
    mlflow_server, demo_data
):
    run_id = log_untrained_run(mlflow_server, demo_data, seed=32)
    digest = MlflowClient(mlflow_server).get_run(run_id).data.params["weights_digest"]
    pp = load_preprocessing(MlflowClient(mlflow_server), run_id)
    mlflow.set_tracking_uri(mlflow_server)
    with mlflow.start_run(run_id=run_id), pytest.raises(Conflict, match="in a new run"):
        log_classifier(other_module(mlflow_server, run_id, seed=33), pp, "model")
    assert weights_digest(load_model(run_id, mlflow_server)) == digest
    recorded = MlflowClient(mlflow_server).get_run(run_id).data.params
    with mlflow.start_run(run_id=run_id):  # the same weights again: nothing changes
        log_classifier(_reloaded(load_model(run_id, mlflow_server)), pp, "model")
    assert MlflowClient(mlflow_server).get_run(run_id).data.params == recorded  # the first's
    # the same weights relabelled: another model as well
    flipped = pp.model_copy(update={"class_names": pp.class_names[::-1]})
    with mlflow.start_run(run_id=run_id), pytest.raises(Conflict, match="other classes"):
        log_classifier(_reloaded(load_model(run_id, mlflow_server)), flipped, "model")


def test_the_evaluator_and_explainer_loader_takes_the_trained_model_over_one_logged_since(
    mlflow_server, demo_data
):
    run_id = log_untrained_run(mlflow_server, demo_data, seed=34)
    trained = MlflowClient(mlflow_server).get_run(run_id).data.params["weights_digest"]
    log_over(mlflow_server, run_id, seed=35)  # what runs:/<run>/model gives from then on
    assert weights_digest(load_model(run_id, mlflow_server)) == trained


def test_the_loader_refuses_a_model_logged_over_a_run_that_records_not_which_it_trained(
    mlflow_server, demo_data
):
    with mock.patch.object(runs.packaging, "_record_digest", weights_only):
        run_id = log_untrained_run(mlflow_server, demo_data, seed=37)
    log_over(mlflow_server, run_id, seed=38)
    with pytest.raises(Conflict, match=r"^the run's model is not the one trained in it: .*new run"):
        load_model(run_id, mlflow_server)


def test_the_loader_refuses_files_of_the_trained_model_changed_since_before_loading(
    mlflow_server, demo_data, tmp_path
):
    run_id = log_untrained_run(mlflow_server, demo_data, seed=39)
    client = MlflowClient(mlflow_server)
    logged = client.get_logged_model(recorded_model(run_id, client.get_run(run_id).data.params)[0])
    marker, weights = tmp_path / "code-ran", tmp_path / f"{TORCH_ARTIFACT}.pt"
    code_running_weights(weights, marker)
    get_artifact_repository(logged.artifact_location).log_artifact(str(weights), "artifacts")
    with pytest.raises(FilesRefused, match="its files' digest is"):
        load_model(run_id, mlflow_server)
    assert not marker.exists()


def test_the_trainer_records_the_digest_of_the_ensemble_it_logs(trained_run):
    uri, run_id = trained_run.tracking_uri, trained_run.run_id
    model = load_model(run_id, uri)
    assert isinstance(model, Ensemble)
    params = MlflowClient(uri).get_run(run_id).data.params
    assert params["weights_digest"] == weights_digest(model)
    assert params["model_records"] == "v1" and recorded_model(run_id, params)  # marked, recorded


def _model_folder(root) -> str:
    (root / "artifacts").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "artifacts" / "model.pt").write_bytes(b"weights" * 100)
    return files_digest(root)


def test_the_files_digest_changes_with_any_byte_or_name_of_the_files(tmp_path):
    digest = _model_folder(tmp_path)
    assert len(digest) == 64 and files_digest(tmp_path) == digest
    (tmp_path / "artifacts" / "model.pt").write_bytes(b"weights" * 99 + b"weightz")
    assert files_digest(tmp_path) != digest
    (tmp_path / "artifacts" / "model.pt").write_bytes(b"weights" * 100)
    (tmp_path / "artifacts" / "model.pt").rename(tmp_path / "artifacts" / "other.pt")
    assert files_digest(tmp_path) != digest
    (tmp_path / "artifacts" / "other.pt").rename(tmp_path / "artifacts" / "model.pt")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "extra.py").write_text("")  # an added file, even empty
    assert files_digest(tmp_path) != digest


def test_the_files_digest_leaves_out_the_note_mlflows_download_writes(tmp_path):
    """A ``models:/`` download writes the registered name and version beside the files: a
    version and the logged model it was registered from have the same files."""
    digest = _model_folder(tmp_path)
    (tmp_path / "registered_model_meta").write_text("model_name: m\nmodel_version: 3\n")
    assert files_digest(tmp_path) == digest


def test_a_symbolic_link_among_a_models_files_is_refused(tmp_path):
    _model_folder(tmp_path)
    (tmp_path / "artifacts" / "link.pt").symlink_to(tmp_path / "artifacts" / "model.pt")
    with pytest.raises(ValueError, match=r"artifacts/link\.pt is a symbolic link"):
        files_digest(tmp_path)
