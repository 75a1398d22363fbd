import json
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from common import InvalidInput, ServiceUnavailable
from dataloader import load_dataset
from runs import Ensemble, Preprocessing, build_model, load_model, load_preprocessing
from tests.trainer.conftest import artifact_json
from trainer import provenance, train

CONTRACT_PARAMS = [
    "model",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "lr_schedule",
    "weight_decay",
    "augmentation",
    "cutmix_alpha",
    "cutmix_prob",
    "seed",
    "device",
    "patience",
    "data_dir",
    "dataset_source",
    "dataset_hash",
    "class_names",
    "num_classes",
    "image_size",
    "channels",
    "norm_mean",
    "norm_std",
    "data_n_train",
    "data_n_val",
    "data_n_test",
]
EPOCH_METRICS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_auc", "lr"]
EPOCH_METRICS += ["epoch_time"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_server, tiny_data):
    """One 2-epoch run of an ensemble of two: (run id, its checkpoint folder)."""
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    run_id = train(
        ["--data-dir", str(tiny_data), "--experiment", "layout", "--tracking-uri", mlflow_server,
         "--checkpoint-dir", str(checkpoints), "--epochs", "2", "--batch-size", "16",
         "--threads", "1", "--no-progress", "--ensemble", "2"]
    )  # fmt: skip
    return run_id, checkpoints


def _run(uri, run_id):
    return MlflowClient(uri).get_run(run_id)


def test_run_logs_every_contract_parameter(trained, mlflow_server, tiny_data):
    params = _run(mlflow_server, trained[0]).data.params
    assert set(CONTRACT_PARAMS) <= set(params)
    assert json.loads(params["class_names"]) == ["keratosis", "melanoma", "nevus"]
    dataset = load_dataset(tiny_data, splits=("train", "val", "test"))
    assert params["dataset_hash"] == dataset.content_hash
    assert int(params["data_n_train"]) + int(params["data_n_val"]) == 24
    assert int(params["data_n_test"]) == 12


def test_metrics_are_logged_per_epoch(trained, mlflow_server):
    client = MlflowClient(mlflow_server)
    for key in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(trained[0], key)] == [1, 2], key
    metrics = _run(mlflow_server, trained[0]).data.metrics
    assert metrics["best_epoch"] == 2  # the default --select last keeps the last epoch


def test_run_has_artifacts_tags_and_no_registered_model(trained, mlflow_server):
    client = MlflowClient(mlflow_server)
    run = client.get_run(trained[0])
    assert run.data.tags["pipeline.stage"] == "trained"
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    paths = {a.path for a in client.list_artifacts(trained[0])}
    assert {"preprocessing.json", "dataset_stats.json", "environment"} <= paths
    # How it was made: the code as it was (tracked files edited or not), the threads, the
    # environment of its one session
    git = provenance.git_state()
    assert run.data.tags["mlflow.source.git.commit"] == git["commit"]
    # (the tree's state when it trained: files edited since would change a digest taken now)
    dirty = run.data.tags["pipeline.git_dirty"]
    assert dirty in ("true", "false")
    diff = run.data.tags.get("pipeline.git_diff_sha256")
    assert (diff is not None and len(diff) == 16) if dirty == "true" else diff is None
    assert run.data.params["torch_threads"] == "1"
    [session] = json.loads(run.data.tags["pipeline.sessions"])
    assert (session["session"], session["start_epoch"], session["member"]) == (1, 1, 1)
    assert (session["commit"], session["dirty"]) == (git["commit"], dirty)
    assert (session["threads"], session["device"], session["world_size"]) == (1, "cpu", 1)
    assert "pipeline.resumed" not in run.data.tags
    env = artifact_json(mlflow_server, trained[0], "environment/session-1.json")
    assert env["torch_threads"] == 1 and env["packages"]["torch"] == torch.__version__
    # Which images its validation split, carved from train, held
    carved = client.download_artifacts(trained[0], "splits/val_files.txt")
    names = Path(carved).read_text().splitlines()
    stats = artifact_json(mlflow_server, trained[0], "dataset_stats.json")
    assert len(names) == stats["counts"]["val"]["total"] and names[0].startswith("train/")
    # Training registers nothing: a model reaches the registry only when someone chooses it.
    assert client.search_model_versions(f"run_id = '{trained[0]}'") == []


def test_dataset_statistics_are_an_artifact(trained, mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    path = client.download_artifacts(trained[0], "dataset_stats.json", str(tmp_path))
    with open(path, encoding="utf-8") as f:
        stats = json.load(f)
    assert stats["counts"]["test"]["total"] == 12
    assert stats["class_names"] == ["keratosis", "melanoma", "nevus"]


def test_preprocessing_rebuilds_the_training_inputs(trained, mlflow_server, tiny_data, tmp_path):
    client = MlflowClient(mlflow_server)
    path = client.download_artifacts(trained[0], "preprocessing.json", str(tmp_path))
    with open(path, encoding="utf-8") as f:
        preprocessing = Preprocessing.model_validate(json.load(f))
    dataset = load_dataset(tiny_data, splits=("train", "val"))
    assert preprocessing.image_size == (32, 32) and preprocessing.channels == 3
    assert preprocessing.mean == pytest.approx(dataset.stats["mean"])
    assert preprocessing.class_names == dataset.class_names


def test_logged_model_gives_the_trained_models_outputs(trained, mlflow_server, tiny_data):
    run_id, checkpoints = trained
    state = torch.load(checkpoints / "last.pt", weights_only=False)
    assert state["finished"] and state["run_id"] == run_id
    preprocessing = load_preprocessing(MlflowClient(mlflow_server), run_id)
    members = []
    for best in (*state["members_done"], state["best"]):
        members.append(build_model("smallcnn", 3, 3, preprocessing.mean, preprocessing.std))
        members[-1].load_state_dict(best["state"])
    trained_model = Ensemble(members).eval()
    loaded = load_model(run_id, mlflow_server)
    test = load_dataset(tiny_data, splits=("test",)).test
    images = preprocessing.to_tensor(test.images)
    with torch.no_grad():
        assert torch.equal(loaded(images), trained_model(images))


def test_unreachable_mlflow_fails_before_reading_data(tmp_path, unreachable_uri):
    missing = tmp_path / "no-such-data"
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        train(["--data-dir", str(missing), "--experiment", "x", "--tracking-uri", unreachable_uri,
               "--checkpoint-dir", str(tmp_path)])  # fmt: skip


def test_one_class_folder_is_a_clear_error(tmp_path, trainer_argv, tiny_data):
    data = tmp_path / "one-class"
    for split in ("train", "test"):
        (data / split / "nevus").mkdir(parents=True)
        for source in sorted((tiny_data / split / "nevus").glob("*.png"))[:4]:
            (data / split / "nevus" / source.name).write_bytes(source.read_bytes())
    with pytest.raises(InvalidInput, match=rf"{data}.*only one class \(nevus\)"):
        train(trainer_argv(data=data))


def test_a_training_that_diverges_stops_saying_to_lower_the_learning_rate(trainer_argv):
    diverged = r"training diverged: .*epoch 1 is -?(nan|inf) .*lower --lr"
    with pytest.raises(InvalidInput, match=diverged):
        train(trainer_argv("--lr", "1e30", "--epochs", "1"))


@pytest.mark.parametrize("augmentation", ["cutmix", "mixup", "none"])
def test_trains_with_each_augmentation(augmentation, trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--augmentation", augmentation, "--epochs", "1"))
    run = MlflowClient(mlflow_server).get_run(run_id)
    assert run.data.params["augmentation"] == augmentation
    assert run.info.status == "FINISHED"
    assert 0 < run.data.metrics["train_loss"] < 5


def test_trains_on_a_medmnist_npz(breastmnist, trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--epochs", "1", data=breastmnist))
    params = MlflowClient(mlflow_server).get_run(run_id).data.params
    assert (params["image_size"], params["channels"], params["num_classes"]) == ("28x28", "1", "2")
    assert (params["data_n_train"], params["data_n_val"], params["data_n_test"]) == (
        "546",
        "78",
        "156",
    )
