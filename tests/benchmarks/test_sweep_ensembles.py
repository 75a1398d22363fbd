"""How the ensemble sweep scores unseen images: AUC per ensemble, decisions over all images."""

import numpy as np
import pytest

from benchmarks.bench_quality import _tiny_npz
from benchmarks.sweep_defaults import train
from benchmarks.sweep_ensembles import _figures, _member_npz, _scores, main


def _found(labels, scores, threshold, cpu_s=10.0):
    labels, scores = np.array(labels), np.array(scores)
    return {"labels": labels, "scores": scores, "called": scores >= threshold, "cpu_s": cpu_s}


def test_auc_is_the_mean_of_each_ensembles_own_auc_and_decisions_pool_all_images():
    # Each fold ranks perfectly, but pooled the folds' scores interleave: AUC per fold is 1.0.
    first = _found([0, 1, 1], [0.1, 0.2, 0.3], threshold=0.2)
    second = _found([0, 0, 1], [0.7, 0.8, 0.9], threshold=0.85, cpu_s=20.0)
    figures = _figures([first, second])
    assert figures["val_auc"] == 1.0
    assert figures["val_sensitivity"] == 1.0  # all three positives at or above their threshold
    assert figures["val_specificity"] == 1.0
    assert figures["val_accuracy"] == pytest.approx(2 / 6)  # a 0.5 cut-off over all six
    assert figures["cpu_s"] == 15.0


def test_member_data_is_written_with_medmnist_names_and_label_columns(tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    path = _member_npz(tmp_path / "m", {"train_images": images, "train_labels": np.arange(4)})
    with np.load(path) as data:
        assert data["train_labels"].shape == (4, 1) and data["train_images"].shape == images.shape


def test_trainer_options_need_a_label(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--", "--select", "auc"])
    assert "--label" in capsys.readouterr().err


def test_members_trained_at_another_size_are_scored_at_that_size(tmp_path):
    # The unseen images are 28 px; a member trained with --image-size 20 must see them at 20 px
    # (fed at 28 px, such members once scored near chance without any error).
    npz = _tiny_npz(tmp_path)
    run = train(npz, ["--epochs", "2", "--ensemble", "1", "--image-size", "20"], 0, tmp_path)
    selection, unseen = _scores(run["run_id"], f"sqlite:///{tmp_path}/mlflow.db", npz)
    assert selection.shape == unseen.shape == (16,)
    labels = np.arange(16) % 2
    assert unseen[labels == 1].mean() > unseen[labels == 0].mean()  # learnt, not chance
