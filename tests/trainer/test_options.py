"""Training options for real datasets (class balance, EMA, input size), the leakage guards, and
that training never reads the test split."""

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from common import InvalidInput
from runs import load_model, load_preprocessing
from tests.trainer.conftest import grey_folder
from trainer import train
from trainer.loop import balanced_class_weights, balanced_indices, improved
from trainer.operating_point import UNCONFIRMED

pytestmark = pytest.mark.slow


def test_balanced_weights_are_inverse_class_frequency():
    weights = balanced_class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_balanced_sampler_draws_each_class_about_equally():
    labels = np.array([0] * 90 + [1] * 10)
    drawn = labels[balanced_indices(labels, seed=0, epoch=1)]
    assert 35 <= (drawn == 1).sum() <= 65
    assert balanced_indices(labels, 0, 1) == balanced_indices(labels, 0, 1)
    assert balanced_indices(labels, 0, 1) != balanced_indices(labels, 0, 2)


@pytest.mark.parametrize("mode", ["loss", "sampler"])
def test_trains_with_class_balance(mode, trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--class-balance", mode, "--epochs", "1"))
    run = mlflow.MlflowClient(mlflow_server).get_run(run_id)
    assert run.data.params["class_balance"] == mode and run.info.status == "FINISHED"
    assert 0 < run.data.metrics["train_loss"] < 5


def test_select_rules_compare_the_epochs_they_name():
    best = {"metrics": {"auc": 0.90, "loss": 0.30, "accuracy": 0.8}}
    higher_auc_worse_loss = {"auc": 0.95, "loss": 0.40, "accuracy": 0.8}
    assert improved(higher_auc_worse_loss, best, "auc")
    assert not improved(higher_auc_worse_loss, best, "loss")
    assert improved({"auc": 0.5, "loss": 9.0, "accuracy": 0.1}, best, "last")
    assert improved(best["metrics"], None, "loss")


@pytest.mark.parametrize("select", ["auc", "loss", "last"])
def test_select_keeps_the_epoch_its_rule_names(select, trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--select", select, "--epochs", "4", "--patience", "1"))
    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(run_id)
    history = {
        name: {m.step: m.value for m in client.get_metric_history(run_id, f"val_{name}")}
        for name in ("loss", "auc")
    }
    kept = int(run.data.metrics["best_epoch"])
    assert run.data.params["select"] == select
    if select == "last":  # never stopped early, whatever the validation figures did
        assert kept == max(history["loss"]) == 4
    elif select == "loss":
        assert history["loss"][kept] == min(history["loss"].values())
    else:
        assert history["auc"][kept] == max(history["auc"].values())
        assert run.data.metrics["best_val_auc"] == max(history["auc"].values())


def test_ema_model_is_the_one_validated_and_kept(trainer_argv, tmp_path):
    train(trainer_argv("--ema-decay", "0.5", "--epochs", "1"))
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
    kept = state["best"]["state"]
    assert all(torch.equal(kept[k], ema[k]) for k in kept)
    assert not all(torch.equal(kept[k], state["model"][k]) for k in kept)


def test_image_size_sets_the_model_input(trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--image-size", "16", "--epochs", "1"))
    client = mlflow.MlflowClient(mlflow_server)
    assert client.get_run(run_id).data.params["image_size"] == "16x16"
    assert load_preprocessing(client, run_id).image_size == (16, 16)


@pytest.mark.parametrize(
    ("option", "side"), [("min_image_size", 40), ("max_image_size", 16)], ids=["up", "down"]
)
def test_a_size_bound_scales_the_32_px_images(trainer_argv, mlflow_server, option, side):
    flag = "--" + option.replace("_", "-")
    run_id = train(trainer_argv(flag, str(side), "--epochs", "1"))
    client = mlflow.MlflowClient(mlflow_server)
    params = client.get_run(run_id).data.params
    assert (params["image_size"], params[option]) == (f"{side}x{side}", str(side))
    assert load_preprocessing(client, run_id).image_size == (side, side)


def test_images_larger_than_224_px_train_at_224_by_default(trainer_argv, mlflow_server, tmp_path):
    data = grey_folder(tmp_path / "big", (240, 300))
    run_id = train(trainer_argv("--epochs", "1", data=data))
    client = mlflow.MlflowClient(mlflow_server)
    assert client.get_run(run_id).data.params["image_size"] == "179x224"
    assert load_preprocessing(client, run_id).image_size == (179, 224)


def test_width_sets_the_smallcnn_channels(trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--width", "8", "--epochs", "1"))
    assert mlflow.MlflowClient(mlflow_server).get_run(run_id).data.params["width"] == "8"
    model = load_model(run_id, mlflow_server)
    assert model.body.features[0].out_channels == 8 and model.head.in_features == 32


def test_width_with_another_model_is_a_clear_error(trainer_argv):
    with pytest.raises(InvalidInput, match="--width sets the channels of smallcnn"):
        train(trainer_argv("--model", "resnet18", "--width", "8"))


def test_positive_class_on_three_classes_is_a_clear_error(trainer_argv, tiny_data):
    assert len([d for d in (tiny_data / "train").iterdir() if d.is_dir()]) == 3
    with pytest.raises(InvalidInput, match=r"has 3 classes.*leave --positive-class out"):
        train(trainer_argv("--positive-class", "melanoma"))


def test_shift_moves_the_training_images(trainer_argv, mlflow_server):
    client = mlflow.MlflowClient(mlflow_server)
    still = client.get_run(train(trainer_argv("--epochs", "1"))).data
    moved = client.get_run(train(trainer_argv("--shift", "2", "--epochs", "1"))).data
    assert (still.params["shift"], moved.params["shift"]) == ("0", "2")
    # Same seed and data: only the shifted images can make the training loss differ.
    assert moved.metrics["train_loss"] != still.metrics["train_loss"]


def test_shift_of_half_the_image_is_a_clear_error(trainer_argv):
    with pytest.raises(InvalidInput, match="use at most"):
        train(trainer_argv("--shift", "100"))


def test_planted_duplicate_makes_the_trainer_warn(trainer_argv, mlflow_server, tiny_data, tmp_path):
    data = shutil.copytree(tiny_data, tmp_path / "dup")
    shutil.copy(data / "train/nevus/0001.png", data / "test/nevus/copy.png")
    run_id = train(trainer_argv("--epochs", "1", data=data))
    run = mlflow.MlflowClient(mlflow_server).get_run(run_id)
    assert run.data.params["leakage_exact"] == "1"
    assert (
        "exact duplicate images across splits (1 train/test)"
        in run.data.tags["pipeline.leakage_warning"]
    )
    shared = json.loads(run.data.tags["pipeline.test_overlap"])
    assert shared == {"exact": 1, "near": 0, "groups": 0}


def test_unreadable_files_are_named_on_the_console(trainer_argv, tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (32, 32))
    (data / "train" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (data / "test" / "b" / "empty.png").write_bytes(b"")
    train(trainer_argv("--epochs", "1", data=data))
    err = capsys.readouterr().err
    assert "warning: 2 files were left out (unreadable, or not an image): test/b/empty.png (" in err
    assert "and 1 more; dataset_stats.json lists each with its reason" in err


def test_class_names_that_do_not_say_the_finding_warn_once_which_one_is_protected(
    trainer_argv, tmp_path, capsys, mlflow_server
):
    """Classes ``a`` and ``b`` (as a MedMNIST .npz's ``0`` and ``1``): the threshold protects
    label 1, said once for the ensemble, and recorded in the operating point."""
    data = grey_folder(tmp_path / "data", (16, 16))
    run_id = train(trainer_argv("--epochs", "1", "--ensemble", "2", data=data))
    err = capsys.readouterr().err
    assert err.count("warning: the decision threshold targets sensitivity 0.9 for class 'b'") == 1
    assert "pass --positive-class 'a'" in err
    client = mlflow.MlflowClient(mlflow_server)
    assert client.get_run(run_id).data.params["positive_class"] == "b"
    point = json.loads(Path(client.download_artifacts(run_id, "operating_point.json")).read_text())
    assert point["positive_chosen"] == UNCONFIRMED


def test_a_validation_split_without_one_class_is_refused_before_training(
    trainer_argv, tmp_path, mlflow_server
):
    data = grey_folder(tmp_path / "grey", (16, 16))
    (data / "val" / "a").mkdir(parents=True)
    for png in sorted((data / "train" / "a").glob("*.png"))[:3]:
        png.rename(data / "val" / "a" / png.name)
    with pytest.raises(InvalidInput, match=r"no image of class 'b'.*--target-sensitivity 0"):
        train(trainer_argv(data=data, experiment="val-one-class"))
    # Refused before a run started (it used to fail after the last epoch, at the threshold).
    assert mlflow.MlflowClient(mlflow_server).get_experiment_by_name("val-one-class") is None


def test_patient_in_train_and_test_stops_training(trainer_argv, tiny_data, tmp_path):
    data = shutil.copytree(tiny_data, tmp_path / "grouped")
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    rows = [f"{f},{'p0' if i in (0, len(files) - 1) else f}" for i, f in enumerate(files)]
    (data / "groups.csv").write_text("file,group\n" + "\n".join(rows) + "\n")
    with pytest.raises(InvalidInput, match=r"train and test.*--allow-group-overlap"):
        train(trainer_argv(data=data))


def test_the_group_manifest_is_recorded_by_its_digest(
    trainer_argv, tiny_data, tmp_path, mlflow_server
):
    """The content hash covers the images only; the manifest decides the carve of val."""
    from dataloader.digests import file_digest

    data = shutil.copytree(tiny_data, tmp_path / "grouped")
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    (data / "groups.csv").write_text("file,group\n" + "".join(f"{f},{f}\n" for f in files))
    run_id = train(trainer_argv("--epochs", "1", data=data))
    params = mlflow.MlflowClient(mlflow_server).get_run(run_id).data.params
    assert params["dataset_groups_hash"] == file_digest(data / "groups.csv")


def test_training_never_reads_the_test_split(trainer_argv, tiny_data, tmp_path):
    """Corrupt test images change nothing: the same model, and only the audit notices."""
    broken = shutil.copytree(tiny_data, tmp_path / "broken")
    for path in (broken / "test").rglob("*.png"):
        path.write_bytes(b"not a png")
    states = []
    for data, name in ((tiny_data, "intact"), (broken, "broken")):
        argv = trainer_argv("--epochs", "1", data=data)
        argv[argv.index("--checkpoint-dir") + 1] = str(tmp_path / name)
        train(argv)
        states.append(torch.load(tmp_path / name / "last.pt", weights_only=False)["best"])
    assert states[0]["metrics"] == states[1]["metrics"]
    intact, corrupt = states[0]["state"], states[1]["state"]
    assert all(torch.equal(intact[k], corrupt[k]) for k in intact)


def test_the_operating_point_records_how_well_its_validation_images_pin_it_down(
    trainer_argv, tmp_path, mlflow_server
):
    data = grey_folder(tmp_path / "data", (16, 16))
    run_id = train(trainer_argv("--epochs", "1", "--ensemble", "1", data=data))
    client = mlflow.MlflowClient(mlflow_server)
    point = json.loads(Path(client.download_artifacts(run_id, "operating_point.json")).read_text())
    assert point["n_val_positive"] + point["n_val_negative"] == point["n_val"]
    low, high = point["val_sensitivity_ci"]
    assert low <= point["val_sensitivity"] <= high and high - low > 0.1  # a handful of images
    low, high = point["val_specificity_ci"]
    assert low <= point["val_specificity"] <= high
