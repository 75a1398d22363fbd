"""Model quality: the trainer's defaults on BreastMNIST with 5 seeds, against published results.

``python -m benchmarks --only quality`` trains ``python -m trainer`` with its defaults (one
thread, in a subprocess, CPU seconds from the child's resource usage) for seeds 0-4 on
``../shared/data/medmnist/breastmnist.npz``, evaluates each run once on the test split with
``evaluator.evaluate_run`` and reports mean ± sd of test AUC and accuracy next to the MedMNIST v2
rows (Yang et al., 2023, Table 3, BreastMNIST): ResNet-18 at 28 px AUC 0.901 / ACC 0.863, best
method AUC 0.919 / ACC 0.861. Goal: mean AUC ≥ 0.919 and ACC ≥ 0.863 in ≤ 10 CPU-minutes per run.

The runs' results are kept in ``QUALITY_DIR`` (default ``.state/bench-quality``) as
``quality.json`` and reused by a later call with the same training settings (``settings_id``),
so an interrupted benchmark continues. ``quick=True`` trains a two-member ensemble for one epoch
on a tiny synthetic two-class ``.npz`` in a temporary folder (seconds), to check that the
pipeline runs.
"""

import hashlib
import json
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Result
from benchmarks.sweep_defaults import BREASTMNIST, train

SEEDS = (0, 1, 2, 3, 4)
PUBLISHED = {"ResNet-18 (28)": (0.901, 0.863), "best published": (0.919, 0.861)}
GOAL_AUC, GOAL_ACC, GOAL_CPU_S = 0.919, 0.863, 600.0


def _tiny_npz(folder: Path) -> Path:
    """A two-class 28 px ``.npz``: bright or dark discs on noise (learnable in one epoch)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    disc = (yy - 14) ** 2 + (xx - 14) ** 2 < 49

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 2
        images = rng.normal(100, 20, (n, 28, 28))
        images[:, disc] += np.where(labels == 1, 80, -60)[:, None]
        return np.clip(images, 0, 255).astype(np.uint8), labels[:, None]

    (tr, ytr), (va, yva), (te, yte) = split(64), split(16), split(16)
    path = folder / "tiny.npz"
    np.savez(path, train_images=tr, train_labels=ytr, val_images=va, val_labels=yva,
             test_images=te, test_labels=yte)  # fmt: skip
    return path


# Options that do not change the model trained.
RUNTIME = ("data_dir", "experiment", "run_name", "tracking_uri", "checkpoint_dir", "resume",
           "device", "threads", "progress", "max_epochs_this_session", "seed")  # fmt: skip


def settings_id(extra: list[str]) -> str:
    """A digest of every training option ``extra`` leaves at or sets to: a result kept in
    ``quality.json`` is reused only while the trainer's defaults stay the same."""
    from trainer import get_args_parser

    options = vars(get_args_parser().parse_args(extra))
    chosen = {k: v for k, v in sorted(options.items()) if k not in RUNTIME}
    return hashlib.sha256(json.dumps(chosen, default=str).encode()).hexdigest()[:10]


def measure(data: Path, seeds: tuple[int, ...], out: Path, extra: list[str]) -> dict[str, dict]:
    """Train (unless already in ``out/quality.json``) and evaluate on test once per seed."""
    from evaluator import evaluate_run

    out.mkdir(parents=True, exist_ok=True)
    path = out / "quality.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    uri = f"sqlite:///{out}/mlflow.db"
    settings = settings_id(extra)
    for seed in seeds:
        key = f"{data.name} | {' '.join(extra) or 'defaults'} | {settings} | seed {seed}"
        if key not in results:
            results[key] = train(data, extra, seed, out)
            path.write_text(json.dumps(results, indent=1))
        if "test_auc" not in results[key]:
            report = evaluate_run(results[key]["run_id"], uri, data_dir=data)
            results[key]["test_auc"] = report["overall"]["roc_auc_macro"]["value"]
            results[key]["test_accuracy"] = report["overall"]["accuracy"]["value"]
            path.write_text(json.dumps(results, indent=1))
    return results


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run(quick: bool = False) -> list[Result]:
    if quick:
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            # Two members of one epoch: the ensemble path of the defaults, in seconds.
            extra = ["--epochs", "1", "--ensemble", "2"]
            data = _tiny_npz(Path(tmp))
            return _report(data, (0,), measure(data, (0,), Path(tmp) / "runs", extra))
    if not BREASTMNIST.exists():
        raise FileNotFoundError(f"{BREASTMNIST} is needed for the quality benchmark")
    out = Path(os.environ.get("QUALITY_DIR", ".state/bench-quality")).resolve()
    return _report(BREASTMNIST, SEEDS, measure(BREASTMNIST, SEEDS, out, []))


def _report(data: Path, seeds: tuple[int, ...], measured: dict[str, dict]) -> list[Result]:
    results = list(measured.values())[-len(seeds) :]
    auc, auc_sd = _mean_sd([r["test_auc"] for r in results])
    acc, acc_sd = _mean_sd([r["test_accuracy"] for r in results])
    cpu, cpu_sd = _mean_sd([r["cpu_s"] for r in results])
    val, _ = _mean_sd([r["val_auc"] for r in results])
    n = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
    published = "; ".join(f"{k}: AUC {a} / ACC {c}" for k, (a, c) in PUBLISHED.items())
    return [
        Result(
            f"{data.name} test AUC, mean of {n} (sd {auc_sd:.3f}; val AUC {val:.3f})",
            auc, GOAL_AUC, "AUC", f"ratio ≥ 1 (mean ≥ {GOAL_AUC})", published, True,
        ),
        Result(
            f"{data.name} test accuracy, mean of {n} (sd {acc_sd:.3f})",
            acc, GOAL_ACC, "ACC", f"ratio ≥ 1 (mean ≥ {GOAL_ACC})", published, True,
        ),
        Result(
            f"training CPU time per run, 1 thread (sd {cpu_sd:.1f} s)",
            cpu, GOAL_CPU_S, "CPU-s", "ratio ≥ 1 (≤ 10 CPU-min)", "incl. start-up and logging",
        ),
    ]  # fmt: skip
