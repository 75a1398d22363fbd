"""Ways to train the ensemble's members, compared on VALIDATION data that none of them saw.

``python -m benchmarks.sweep_ensembles --out DIR [--data FILE.npz] [--seeds 0 1 2 3 4]
[--procedures holdout crossfit] [--cv] [--label NAME -- TRAINER ARGS]``. First it asked whether
the hold-out ensemble (five members that all select on one validation split) would do better
as a cross-fitted one (member k keeps its epoch on fold k of the pooled data, so every image
trains four members and validates one, and the decision threshold comes from the out-of-fold
predictions). Both procedures get only BreastMNIST's *train* split (546 images) as their pool;
BreastMNIST's official *val* split (78 images) plays the unseen data. Test images are never read.

* ``holdout``: members 0-4 train on the pool minus stratified fold 0 and select on fold 0;
  the threshold is chosen on the ensemble's probabilities on fold 0.
* ``crossfit``: member k trains on the pool minus fold k and selects on fold k; the threshold is
  chosen on the pooled out-of-fold probabilities (each image scored by the member that did not
  train on it).

Each member is one ``python -m trainer --ensemble 1`` run (``benchmarks.sweep_defaults.train``,
one thread) on an ``.npz`` whose train/val are its pool parts and whose test split is the
official val split. Reported per seed and procedure: the ensemble's AUC and accuracy on the
official val split, and the sensitivity and specificity there of the threshold chosen for
sensitivity 0.9 (the trainer's ``--target-sensitivity``). Trainer options after ``--`` (with
``--label``) make a variant of a procedure, e.g. ``--label select-loss -- --select loss``: the
members' epoch choice compared the same way. With ``--cv`` the pool is train and val together
(624 images) in 5 outer folds: five ensembles per seed, each trained on four fifths and scored
on the fifth it never saw, so every one of the 624 images is scored (8× the 78 val images, at
5× the training). docs/model-quality.md has the figures.

``--data FILE.npz`` runs the same comparison on another MedMNIST-style file (``train_*``,
``val_*`` and ``test_*`` arrays, one label per image; its test split is never read either):
the way to check an option such as ``--min-image-size 56`` on one's own data before using it.
``--copies-together`` keeps exact and near copies of an image (``dataloader.duplicate_clusters``)
in one fold, outer and inner (scikit-learn's ``StratifiedGroupKFold``), so that no image is
scored by members that trained on its copy; BreastMNIST's train and val hold 115 such copies.
With more than two classes AUC is the macro one-vs-rest AUC (as the evaluator's
``roc_auc_macro``) and no threshold, sensitivity or specificity is reported.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from benchmarks.sweep_defaults import BREASTMNIST, train
from common import atomic_write_text

PROCEDURES = ("holdout", "crossfit")
K = 5  # members, and folds
TARGET_SENSITIVITY = 0.9
OWNED_OPTIONS = ("--ensemble", "--seed")  # trainer options the sweep sets for each member


def _member_npz(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``arrays`` (``train_images``, ``train_labels``, ... as MedMNIST names them) as an npz."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "breastmnist.npz"
    np.savez(path, **{k: v if "labels" not in k else v.reshape(-1, 1) for k, v in arrays.items()})
    return path


def _scores(run_id: str, uri: str, npz: Path) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (N×K) of the run's model on the npz's val and test (the unseen
    images), loaded as the evaluator loads them: at the run's image size and channels."""
    from dataloader import load_dataset
    from runs.inference import batches, predict
    from runs.tracking import get_client, load_model, load_preprocessing

    model, pp = load_model(run_id, uri), load_preprocessing(get_client(uri), run_id)
    data = load_dataset(npz, pp.image_size, pp.channels, splits=("val", "test"))

    def proba(images: np.ndarray) -> np.ndarray:
        return predict(model, batches(images, pp)).numpy()

    return proba(data.val.images), proba(data.test.images)


def _auc(labels: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC of label 1 for two classes, else the macro one-vs-rest AUC."""
    if proba.shape[1] == 2:
        return float(roc_auc_score(labels, proba[:, 1]))
    classes = list(range(proba.shape[1]))
    return float(roc_auc_score(labels, proba, multi_class="ovr", labels=classes))


def _folds(images: np.ndarray, labels: np.ndarray, state: int, copies_together: bool) -> list:
    """``K`` stratified ``(train, held out)`` index pairs; with ``copies_together`` every
    duplicate cluster of ``images`` lies in one fold."""
    if not copies_together:
        return list(StratifiedKFold(K, shuffle=True, random_state=state).split(labels, labels))
    from dataloader import duplicate_clusters

    folds = StratifiedGroupKFold(K, shuffle=True, random_state=state)
    return list(folds.split(labels, labels, duplicate_clusters(images)))


def _ensemble(
    folder: str, pool, unseen, seed: int, procedure: str, extra: list[str], copies_together: bool
) -> dict:
    """Train ``procedure``'s five members on the ``pool`` (images, labels) and score the
    ensemble on ``unseen``: its probabilities, for two classes the threshold chosen for
    ``TARGET_SENSITIVITY`` and its calls, and the CPU seconds."""
    from trainer.operating_point import threshold_for_sensitivity

    (pool_x, pool_y), (unseen_x, unseen_y) = pool, unseen
    folds = _folds(pool_x, pool_y, 1000 + seed, copies_together)
    selection, held_out, cpu = [], [], 0.0
    for k in range(K):
        train_idx, val_idx = folds[0 if procedure == "holdout" else k]
        member = Path(f"{folder}-member{k}")
        npz = _member_npz(member, {
            "train_images": pool_x[train_idx], "train_labels": pool_y[train_idx],
            "val_images": pool_x[val_idx], "val_labels": pool_y[val_idx],
            "test_images": unseen_x, "test_labels": unseen_y,
        })  # fmt: skip
        trained = train(npz, ["--ensemble", "1", *extra], seed * K + k, member)
        sel, val = _scores(trained["run_id"], f"sqlite:///{member}/mlflow.db", npz)
        selection.append((sel, pool_y[val_idx]))
        held_out.append(val)
        cpu += trained["cpu_s"]
    ensemble = np.mean(held_out, 0)
    found = {"scores": ensemble, "labels": unseen_y, "members": held_out, "cpu_s": cpu}
    if ensemble.shape[1] != 2:
        return found
    if procedure == "holdout":  # the ensemble's probabilities on the shared fold
        sel_scores, sel_labels = np.mean([s for s, _ in selection], 0), selection[0][1]
    else:  # out of fold: each image by the one member that did not train on it
        sel_scores = np.concatenate([s for s, _ in selection])
        sel_labels = np.concatenate([y for _, y in selection])
    threshold, *_ = threshold_for_sensitivity(sel_labels == 1, sel_scores[:, 1], TARGET_SENSITIVITY)
    return {**found, "threshold": threshold, "called": ensemble[:, 1] >= threshold}


def _figures(found: list[dict]) -> dict:
    """AUC (the mean over the ensembles, each on its own unseen images), accuracy (argmax) and,
    for two classes, sensitivity and specificity at the threshold over all unseen images."""
    labels = np.concatenate([f["labels"] for f in found])
    scores = np.concatenate([f["scores"] for f in found])
    figures = {
        "val_auc": float(np.mean([_auc(f["labels"], f["scores"]) for f in found])),
        "val_accuracy": float((scores.argmax(1) == labels).mean()),
        "cpu_s": round(sum(f["cpu_s"] for f in found) / len(found), 1),
    }
    if all("called" in f for f in found):
        called = np.concatenate([f["called"] for f in found])
        figures["val_sensitivity"] = float(called[labels == 1].mean())
        figures["val_specificity"] = float((~called[labels == 0]).mean())
    return figures


def _train_and_val(data: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """``(images, labels)`` of the train and of the val split of a MedMNIST-style ``.npz``, read
    and checked by the dataloader at their native size (the test split is not read).

    Raises:
        DataError: The file is not such an ``.npz`` (multi-label, wrong arrays, ...) or has no
            val split.
    """
    from dataloader import DataError, load_dataset

    ds = load_dataset(data, splits=("train", "val"), val_fraction=0.0)
    if ds.val is None:
        raise DataError(f"{data} has no val_images / val_labels; the sweep scores on that split")
    return (ds.train.images, ds.train.labels), (ds.val.images, ds.val.labels)


def compare(
    out: Path,
    seed: int,
    procedure: str,
    extra: list[str],
    label: str,
    data: Path = BREASTMNIST,
    copies_together: bool = False,
) -> dict:
    """Train the five members of ``procedure`` with trainer options ``extra`` for ``seed`` on
    the train split of ``data`` and score them on its val split (see the module)."""
    pool, unseen = _train_and_val(data)
    folder = str(out / f"{label}-seed{seed}")
    found = _ensemble(folder, pool, unseen, seed, procedure, extra, copies_together)
    return {
        **_figures([found]),
        "threshold": found.get("threshold"),
        "member_val_auc": [_auc(unseen[1], s) for s in found["members"]],
    }


def cross_validate(
    out: Path,
    seed: int,
    procedure: str,
    extra: list[str],
    label: str,
    data: Path = BREASTMNIST,
    copies_together: bool = False,
) -> dict:
    """``--cv``: the same on 5 outer folds of train and val pooled (BreastMNIST: 624 images):
    five ensembles per seed, each trained on four fifths and scored on the fifth it never saw,
    so all pooled images are scored (8× what the val split alone gives; 5× the training)."""
    (train_x, train_y), (val_x, val_y) = _train_and_val(data)
    x, y = np.concatenate([train_x, val_x]), np.concatenate([train_y, val_y])
    outer = _folds(x, y, 2000 + seed, copies_together)
    found = [
        _ensemble(str(out / f"{label}-seed{seed}-outer{o}"), (x[inner], y[inner]),
                  (x[unseen], y[unseen]), seed, procedure, extra, copies_together)
        for o, (inner, unseen) in enumerate(outer)
    ]  # fmt: skip
    # Per fold, the AUC of its first k members for k = 1..K: how much each member adds, on the
    # same unseen images, without training again. All K members are the ensemble itself
    # (its scores are their mean), so fold_val_auc, which earlier files and the docs read, is
    # the last entry rather than a second computation.
    by_size = [_auc_by_size(f) for f in found]
    return {
        **_figures(found),
        "fold_val_auc": [aucs[-1] for aucs in by_size],
        "fold_val_auc_by_size": by_size,
    }


def _auc_by_size(found: dict) -> list[float]:
    """AUC on ``found``'s unseen images of the mean of its first k members, k = 1..all."""
    members = found["members"]
    return [_auc(found["labels"], np.mean(members[:k], 0)) for k in range(1, len(members) + 1)]


def _table(results: dict) -> str:
    rows = ["| procedure | val AUC | val ACC | sensitivity | specificity | CPU-s |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for label in dict.fromkeys(key.split(" | ")[0] for key in results):
        found = [r for key, r in results.items() if key.split(" | ")[0] == label]
        cells = [label]
        for name in ("val_auc", "val_accuracy", "val_sensitivity", "val_specificity", "cpu_s"):
            values = [r[name] for r in found if r.get(name) is not None]
            if not values:  # sensitivity and specificity: two classes only
                cells.append("—")
                continue
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.fmean(values):.3f} ± {sd:.3f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--procedures", nargs="+", choices=PROCEDURES, default=list(PROCEDURES))
    parser.add_argument("--label", default="", help="names the variant of trainer options")
    parser.add_argument("--cv", action="store_true", help="score on outer folds of train+val")
    parser.add_argument(
        "--copies-together", action="store_true",
        help="keep exact and near copies of an image in one fold (outer and inner)",
    )  # fmt: skip
    parser.add_argument(
        "--data", type=Path, default=BREASTMNIST,
        help="a MedMNIST-style .npz (default: the shared breastmnist.npz); test is never read",
    )  # fmt: skip
    parser.add_argument("trainer_args", nargs="*", help="after --: options for every member")
    args = parser.parse_args(argv)
    from dataloader import DataError

    if args.trainer_args and not args.label:
        parser.error("name the variant with --label when passing trainer options")
    # Each member is one --ensemble 1 run with a seed of its own, set here; a later copy of
    # either option would silently win (members of K models, or five identical members). The
    # trainer's argparse also takes unambiguous prefixes (--ens 3), so those count too.
    owned = [
        a for a in args.trainer_args
        if len(name := a.split("=")[0]) > 2 and any(o.startswith(name) for o in OWNED_OPTIONS)
    ]  # fmt: skip
    if owned:
        parser.error(
            f"{' '.join(owned)}: the sweep trains every member as one model (--ensemble 1) "
            f"with its own seed and builds the {K}-member ensembles itself; drop it from the "
            "trainer options (choose seeds with --seeds)"
        )
    if not args.data.is_file():
        parser.error(f"--data {args.data} is not a file; pass a MedMNIST-style .npz")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "ensembles.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for seed in args.seeds:
        for procedure in args.procedures:
            label = f"{procedure} {args.label}{' cv' if args.cv else ''}".strip()
            if args.copies_together:
                label += " copies-together"
            if args.data != BREASTMNIST:  # one --out may hold several data sets' results
                label += f" [{args.data.stem}]"
            key = f"{label} | seed {seed}"
            if key not in results:  # an interrupted comparison continues
                measure = cross_validate if args.cv else compare
                try:
                    results[key] = measure(
                        args.out, seed, procedure, args.trainer_args, label, args.data,
                        args.copies_together,
                    )  # fmt: skip
                except DataError as exc:  # data the sweep cannot compare on
                    parser.error(str(exc))
                atomic_write_text(path, json.dumps(results, indent=1))
            print(key, json.dumps(results[key]), flush=True)
    print(_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
