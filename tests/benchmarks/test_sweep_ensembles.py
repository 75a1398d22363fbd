"""How the ensemble sweep scores unseen images: AUC per ensemble, decisions over all images."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks import sweep_ensembles
from benchmarks.bench_quality import _tiny_npz
from benchmarks.sweep_defaults import train
from benchmarks.sweep_ensembles import (
    _auc_by_size,
    _figures,
    _folds,
    _member_npz,
    _scores,
    main,
)


def _found(labels, scores, threshold, cpu_s=10.0):
    """Two classes: ``scores`` are the probabilities of label 1."""
    labels, scores = np.array(labels), np.array(scores)
    proba = np.stack([1 - scores, scores], axis=1)
    return {"labels": labels, "scores": proba, "called": scores >= threshold, "cpu_s": cpu_s}


def _three_class_npz(path, n_train=45, n_val=30, n_test=9):
    """28 px grey images whose brightness gives the class (0, 1 or 2)."""
    rng = np.random.default_rng(0)

    def split(n):
        labels = np.arange(n) % 3
        images = rng.normal(60 + 60 * labels[:, None, None], 15, (n, 28, 28))
        return np.clip(images, 0, 255).astype(np.uint8), labels[:, None]

    arrays = {}
    for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = split(n)
    np.savez(path, **arrays)
    return path


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


def test_each_fold_reports_the_auc_of_its_first_k_members():
    labels = np.array([0, 0, 1, 1])
    # The first member ranks one pair wrong; averaged with the second it ranks all right.
    first = np.array([[0.6, 0.4], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9]])
    second = np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.2, 0.8]])
    found = {"labels": labels, "members": [first, second]}
    assert _auc_by_size(found) == [0.75, 1.0]


def test_more_than_two_classes_get_the_macro_auc_and_no_operating_point():
    labels = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8],
                      [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]])  # fmt: skip
    figures = _figures([{"labels": labels, "scores": proba, "cpu_s": 5.0}])
    assert figures["val_auc"] == pytest.approx(
        roc_auc_score(labels, proba, multi_class="ovr", average="macro")
    )
    assert figures["val_accuracy"] == pytest.approx(5 / 6)  # argmax; the fourth image is wrong
    assert "val_sensitivity" not in figures and "val_specificity" not in figures


def test_multi_label_data_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "chest.npz"
    images = np.zeros((4, 28, 28), np.uint8)
    labels = np.zeros((4, 14), np.uint8)
    np.savez(path, train_images=images, train_labels=labels, val_images=images,
             val_labels=labels)  # fmt: skip
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "out"), "--data", str(path), "--procedures", "holdout"])
    err = capsys.readouterr().err
    assert "chest.npz: train_labels has shape (4, 14)" in err
    assert "multi-label datasets are not supported" in err


def test_a_file_that_is_not_an_npz_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "notes.npz"
    path.write_text("not a zip file")
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "out"), "--data", str(path), "--procedures", "holdout"])
    assert "notes.npz is not a .npz file" in capsys.readouterr().err


def test_data_without_a_val_split_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "noval.npz"
    images, labels = np.zeros((4, 28, 28), np.uint8), np.arange(4)[:, None] % 2
    np.savez(path, train_images=images, train_labels=labels, test_images=images,
             test_labels=labels)  # fmt: skip
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "out"), "--data", str(path), "--procedures", "holdout"])
    assert "noval.npz has no val_images / val_labels" in capsys.readouterr().err


def test_missing_data_file_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--data", str(tmp_path / "nope.npz")])
    assert "is not a file" in capsys.readouterr().err


def test_another_npz_with_three_classes_is_compared_on_its_val_split(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep_ensembles, "K", 2)  # 2 members (and folds): each is a trainer run
    data = _three_class_npz(tmp_path / "three.npz")
    argv = ["--out", str(tmp_path / "out"), "--data", str(data), "--procedures", "holdout",
            "--seeds", "0", "--label", "short", "--", "--epochs", "2"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((tmp_path / "out" / "ensembles.json").read_text())
    found = results["holdout short [three] | seed 0"]
    assert found["val_auc"] > 0.9  # brightness separates the classes
    assert len(found["member_val_auc"]) == 2 and found["threshold"] is None
    assert "| holdout short [three] |" in capsys.readouterr().out


def test_member_data_is_written_with_medmnist_names_and_label_columns(tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    path = _member_npz(tmp_path / "m", {"train_images": images, "train_labels": np.arange(4)})
    with np.load(path) as data:
        assert data["train_labels"].shape == (4, 1) and data["train_images"].shape == images.shape


def test_trainer_options_need_a_label(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--", "--select", "auc"])
    assert "--label" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--ensemble", "3"], ["--seed=4"], ["--ens", "2"]])
def test_options_the_sweep_sets_itself_are_refused(option, capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--label", "x", "--", *option])
    assert "drop it from the trainer options" in capsys.readouterr().err
    assert not (tmp_path / "ensembles.json").exists()


def test_members_trained_at_another_size_are_scored_at_that_size(tmp_path):
    # The unseen images are 28 px; a member trained with --image-size 20 must see them at 20 px
    # (fed at 28 px, such members once scored near chance without any error).
    npz = _tiny_npz(tmp_path)
    run = train(npz, ["--epochs", "2", "--ensemble", "1", "--image-size", "20"], 0, tmp_path)
    selection, unseen = _scores(run["run_id"], f"sqlite:///{tmp_path}/mlflow.db", npz)
    assert selection.shape == unseen.shape == (16, 2)
    labels = np.arange(16) % 2
    assert unseen[labels == 1, 1].mean() > unseen[labels == 0, 1].mean()  # learnt, not chance


@pytest.mark.parametrize("copies_together", [False, True])
def test_copies_of_an_image_share_a_fold_only_when_asked(copies_together):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 16, 16, 1), dtype=np.uint8)
    images[30:45] = images[:15]  # 15 exact copies
    labels = np.tile([0, 1], 30)
    labels[30:45] = labels[:15]
    folds = _folds(images, labels, state=3, copies_together=copies_together)
    assert sorted(np.concatenate([held for _, held in folds]).tolist()) == list(range(60))
    fold_of = {i: k for k, (_, held) in enumerate(folds) for i in held}
    apart = sum(fold_of[i] != fold_of[i + 30] for i in range(15))
    assert (apart == 0) if copies_together else (apart > 0)
