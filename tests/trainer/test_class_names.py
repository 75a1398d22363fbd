"""``--class-names``: a .npz's labels named, so that the model answers with names, not numbers."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from dataloader import DataError
from runs import load_preprocessing
from trainer import train
from trainer.data_warnings import numbered_classes_warning


def _npz(path: Path, per_class: int = 12) -> Path:
    """Two classes of 16 px grey images, told apart by brightness (train, val and test)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", per_class), ("val", 4), ("test", 4)):
        labels = np.repeat([0, 1], n)
        images = rng.integers(0, 100, (2 * n, 16, 16), dtype=np.uint8) + 100 * labels[:, None, None]
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = (
            images.astype(np.uint8),
            labels[:, None],
        )
    np.savez(path, **arrays)
    return path


def test_an_npz_s_names_are_the_model_s_classes_and_pick_its_positive_class(
    trainer_argv, tmp_path, mlflow_server, capsys
):
    data = _npz(tmp_path / "two.npz")
    run_id = train(trainer_argv("--epochs", "1", "--class-names", "malignant, benign", data=data))
    client = mlflow.MlflowClient(mlflow_server)
    assert load_preprocessing(client, run_id).class_names == ["malignant", "benign"]
    point = json.loads(Path(client.download_artifacts(run_id, "operating_point.json")).read_text())
    assert point["positive_class"] == "malignant"  # beside "benign", without --positive-class
    err = capsys.readouterr().err
    assert "named by their labels" not in err and "--positive-class" not in err


def test_class_names_for_a_missing_path_leave_the_missing_path_to_be_said(trainer_argv, tmp_path):
    with pytest.raises(DataError, match=r"does not exist"):
        train(trainer_argv("--class-names", "a,b", data=tmp_path / "typo.npz"))


def test_class_names_for_a_folder_are_refused_in_one_line(trainer_argv, tiny_data):
    with pytest.raises(DataError, match=r"is a folder, whose classes are its subfolders' names"):
        train(trainer_argv("--class-names", "a,b,c", data=tiny_data))


def test_more_class_names_than_the_file_s_labels_are_refused(trainer_argv, tmp_path):
    data = _npz(tmp_path / "two.npz")
    with pytest.raises(DataError, match=r"no training image of label\(s\) 2 \(extra\)"):
        train(trainer_argv("--class-names", "malignant,benign,extra", data=data))


def test_an_npz_without_names_warns_that_its_classes_are_numbers():
    warning = numbered_classes_warning({"format": "npz", "class_names": ["0", "1"]})
    assert warning.startswith("the classes are named by their labels ('0', '1')")
    assert "--class-names" in warning
    assert numbered_classes_warning({"format": "npz", "class_names": ["malignant", "1"]}) is None
    assert numbered_classes_warning({"format": "folder", "class_names": ["0", "1"]}) is None
    # named so on purpose (--class-names 1,0): no warning
    assert numbered_classes_warning({"format": "npz", "class_names": ["1", "0"]}, True) is None
