"""What the trainer says about the kept model beyond its figures (``trainer.verdict``)."""

import math
from pathlib import Path

import numpy as np
import pytest

from runs import wilson_interval
from trainer import train
from trainer.verdict import chance_note, threshold_note


def _point(positives: int, found: int) -> dict:
    return {
        "threshold": 0.42,
        "positive_class": "malignant",
        "n_val_positive": positives,
        "val_sensitivity": found / positives,
        "val_sensitivity_ci": list(wilson_interval(found, positives)),
    }


def test_a_model_close_to_chance_is_told_to_lower_the_lr_or_check_the_labels():
    note = chance_note(0.512, 0.5)
    assert note.startswith("the kept model's validation AUC is 0.512, close to chance (0.5)")
    assert "lower --lr (now 0.5)" in note and "class folder" in note


@pytest.mark.parametrize("auc", [0.6, 0.93, math.nan])
def test_a_model_clear_of_chance_or_without_an_auc_gets_no_note(auc):
    assert chance_note(auc, 0.003) is None


def test_a_threshold_on_few_positive_images_is_told_with_its_interval():
    note = threshold_note(_point(positives=9, found=8))
    assert "chosen on 9 validation images of 'malignant'" in note
    assert "0.89, has a 95 % interval of 0.57-0.98" in note


@pytest.mark.parametrize("point", [None, _point(positives=10, found=9)])
def test_a_threshold_on_ten_positives_or_none_gets_no_note(point):
    assert threshold_note(point) is None


def _noise_npz(path: Path) -> Path:
    """Two classes of 16 px grey noise drawn alike: nothing to learn (60 val images a class)."""
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", 40), ("val", 60), ("test", 2)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (2 * n, 16, 16), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.repeat([0, 1], n)[:, None]
    np.savez(path, **arrays)
    return path


def test_a_model_trained_on_noise_is_said_to_be_close_to_chance(trainer_argv, tmp_path, capsys):
    data = _noise_npz(tmp_path / "noise.npz")
    train(trainer_argv("--epochs", "1", "--class-names", "malignant,benign", data=data))
    err = capsys.readouterr().err
    assert "warning: the kept model's validation AUC is 0." in err
    assert "close to chance (0.5)" in err
    assert "decision threshold" not in err  # 60 positive validation images are enough


def test_a_threshold_on_four_positive_images_is_warned_at_the_end_of_training(
    trainer_argv, tmp_path, capsys
):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("val", 4), ("test", 2)):  # told apart by brightness
        labels = np.repeat([0, 1], n)
        noise = rng.integers(0, 100, (2 * n, 16, 16), dtype=np.uint8)
        arrays[f"{split}_images"] = (noise + 100 * labels[:, None, None]).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None]
    np.savez(tmp_path / "two.npz", **arrays)
    train(trainer_argv("--class-names", "malignant,benign", data=tmp_path / "two.npz"))
    err = capsys.readouterr().err
    assert "warning: the decision threshold (" in err
    assert "was chosen on 4 validation images of 'malignant'" in err


def test_a_model_far_below_chance_is_told_its_validation_labels_may_be_swapped():
    note = chance_note(0.15, 0.003)
    assert note.startswith("the kept model's validation AUC is 0.150, below chance (0.5)")
    assert "validation labels its classes as training does" in note and "--lr" not in note
