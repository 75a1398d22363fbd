"""Ways to train the ensemble's members, compared on VALIDATION data that none of them saw.

``python -m benchmarks.sweep_ensembles --out DIR [--seeds 0 1 2 3 4] [--procedures holdout
crossfit] [--label NAME -- TRAINER ARGS]``. First it asks whether the default
ensemble (five members that all keep their best epoch on one validation split) would do better
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
members' epoch choice compared the same way. docs/model-quality.md has the figures.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from benchmarks.sweep_defaults import BREASTMNIST, train
from common import atomic_write_text

PROCEDURES = ("holdout", "crossfit")
K = 5  # members, and folds
TARGET_SENSITIVITY = 0.9


def _member_npz(folder: Path, data: dict, train_idx, val_idx) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "breastmnist.npz"
    pool_x, pool_y = data["train_images"], data["train_labels"]
    np.savez(
        path,
        train_images=pool_x[train_idx], train_labels=pool_y[train_idx],
        val_images=pool_x[val_idx], val_labels=pool_y[val_idx],
        test_images=data["val_images"], test_labels=data["val_labels"],
    )  # fmt: skip
    return path


def _scores(run_id: str, uri: str, npz: Path) -> tuple[np.ndarray, np.ndarray]:
    """Probability of label 1 of the run's model on the npz's val and test (official val)."""
    from runs.inference import batches, predict
    from runs.tracking import get_client, load_model, load_preprocessing

    model, pp = load_model(run_id, uri), load_preprocessing(get_client(uri), run_id)
    data = np.load(npz)

    def positive(images: np.ndarray) -> np.ndarray:
        images = images if images.ndim == 4 else images[..., None]
        return predict(model, batches(images, pp)).numpy()[:, 1]

    return positive(data["val_images"]), positive(data["test_images"])


def compare(out: Path, seed: int, procedure: str, extra: list[str], label: str) -> dict:
    """Train the five members of ``procedure`` with trainer options ``extra`` for ``seed`` and
    score them (see the module)."""
    from trainer.operating_point import threshold_for_sensitivity

    data = dict(np.load(BREASTMNIST))
    pool_y = data["train_labels"].ravel()
    folds = list(StratifiedKFold(K, shuffle=True, random_state=1000 + seed).split(pool_y, pool_y))
    selection, held_out, cpu = [], [], 0.0
    for k in range(K):
        train_idx, val_idx = folds[0 if procedure == "holdout" else k]
        folder = out / f"{label}-seed{seed}-member{k}"
        npz = _member_npz(folder, data, train_idx, val_idx)
        trained = train(npz, ["--ensemble", "1", *extra], seed * K + k, folder)
        sel, val = _scores(trained["run_id"], f"sqlite:///{folder}/mlflow.db", npz)
        selection.append((sel, pool_y[val_idx]))
        held_out.append(val)
        cpu += trained["cpu_s"]
    if procedure == "holdout":  # the ensemble's probabilities on the shared fold
        sel_scores, sel_labels = np.mean([s for s, _ in selection], 0), selection[0][1]
    else:  # out of fold: each image by the one member that did not train on it
        sel_scores = np.concatenate([s for s, _ in selection])
        sel_labels = np.concatenate([y for _, y in selection])
    threshold, *_ = threshold_for_sensitivity(sel_labels == 1, sel_scores, TARGET_SENSITIVITY)
    ensemble, labels = np.mean(held_out, 0), data["val_labels"].ravel()
    called = ensemble >= threshold
    return {
        "val_auc": roc_auc_score(labels, ensemble),
        "val_accuracy": float(((ensemble >= 0.5) == labels).mean()),
        "threshold": threshold,
        "val_sensitivity": float(called[labels == 1].mean()),
        "val_specificity": float((~called[labels == 0]).mean()),
        "member_val_auc": [roc_auc_score(labels, s) for s in held_out],
        "cpu_s": round(cpu, 1),
    }


def _table(results: dict) -> str:
    rows = ["| procedure | val AUC | val ACC | sensitivity | specificity | CPU-s |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for label in dict.fromkeys(key.split(" | ")[0] for key in results):
        found = [r for key, r in results.items() if key.split(" | ")[0] == label]
        cells = [label]
        for name in ("val_auc", "val_accuracy", "val_sensitivity", "val_specificity", "cpu_s"):
            values = [r[name] for r in found]
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
    parser.add_argument("trainer_args", nargs="*", help="after --: options for every member")
    args = parser.parse_args(argv)
    if args.trainer_args and not args.label:
        parser.error("name the variant with --label when passing trainer options")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "ensembles.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for seed in args.seeds:
        for procedure in args.procedures:
            label = f"{procedure} {args.label}".strip()
            key = f"{label} | seed {seed}"
            if key not in results:  # an interrupted comparison continues
                results[key] = compare(args.out, seed, procedure, args.trainer_args, label)
                atomic_write_text(path, json.dumps(results, indent=1))
            print(key, json.dumps(results[key]), flush=True)
    print(_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
