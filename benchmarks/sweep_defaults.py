"""A small sweep of the trainer's settings, judged on VALIDATION data only.

``python -m benchmarks.sweep_defaults --out DIR [--only breastmnist|demo]`` trains each
configuration with ``python -m trainer`` in a subprocess (one thread), reads the validation AUC and
accuracy of the selected checkpoint from the trainer's last line and the CPU seconds from the
child's resource usage, and writes ``DIR/sweep.json`` and a table. No test figure is computed:
the trainer never reads test labels, and nothing here runs the evaluator. docs/model-quality.md
gives the procedure and the results.
"""

import argparse
import json
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

from benchmarks.common import scratch_experiment
from common import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
BREASTMNIST = ROOT.parent / "shared" / "data" / "medmnist" / "breastmnist.npz"
BEST = re.compile(r"validation AUC ([0-9.]+) \(accuracy ([0-9.]+)\) at epoch (\d+)")

# The settings each row was measured with, pinned (the defaults have moved since: 80 epochs
# and the last epoch kept): one model per row, then the ensemble of five such models.
THEN = ["--select", "auc"]  # each model kept its best validation AUC epoch, early stopping
ONE = ["--ensemble", "1", *THEN]
CONFIGS: dict[str, list[str]] = {
    "one model (smallcnn, lr 3e-3, 30 epochs)": ["--epochs", "30", *ONE],
    "EMA 0.99": ["--epochs", "30", "--ema-decay", "0.99", *ONE],
    "lr 1e-3": ["--epochs", "30", "--lr", "1e-3", *ONE],
    "50 epochs": ["--epochs", "50", *ONE],
    "resnet18": ["--epochs", "30", "--model", "resnet18", *ONE],
    "image size 56": ["--epochs", "30", "--image-size", "56", *ONE],
    "ensemble of 5 (30 epochs, best-AUC epochs)": ["--epochs", "30", *THEN],
}
DATASETS = {"breastmnist": (BREASTMNIST, (0, 1)), "demo": (None, (0,))}
# resnet18: 4× the compute at 64 px; image size 56: below the demo set's native 64 px;
# ensemble 5: five demo-set models (160 CPU-s each) exceed the budget on this set.
DEMO_SKIP = ("resnet18", "image size", "ensemble")
ONE_SEED = ("resnet18",)  # the costliest: one seed only
CPU_BUDGET_S = 600  # the budget: 10 CPU-minutes of training per run


def _limit_cpu() -> None:  # in the child, before exec: the kernel stops it at the budget
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_BUDGET_S, CPU_BUDGET_S + 5))


def train(data: Path, extra: list[str], seed: int, out: Path) -> dict:
    """One training run: validation AUC/accuracy at the selected epoch and CPU seconds, or
    ``{"over_budget": True, ...}`` when it used up ``CPU_BUDGET_S`` (such a setting cannot be a
    default, whatever its figures)."""
    uri = scratch_experiment(out, "sweep")  # made here: its artifacts stay in ``out``
    argv = [
        sys.executable, "-m", "trainer", "--data-dir", str(data), "--experiment", "sweep",
        "--tracking-uri", uri, "--checkpoint-dir", str(out / "ck"),
        "--threads", "1", "--no-progress", "--seed", str(seed), *extra,
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=False, preexec_fn=_limit_cpu
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # SIGXCPU at the soft limit; getrusage may read a hair under it.
    if proc.returncode == -signal.SIGXCPU or (
        proc.returncode == -signal.SIGKILL and cpu >= CPU_BUDGET_S
    ):
        return {"over_budget": True, "cpu_s": round(cpu, 1)}
    match = BEST.search(proc.stderr)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"trainer failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return {
        "val_auc": float(match.group(1)),
        "val_accuracy": float(match.group(2)),
        "best_epoch": int(match.group(3)),
        "cpu_s": round(cpu, 1),
        "run_id": proc.stdout.strip().splitlines()[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", choices=tuple(DATASETS))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "sweep.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if "demo" in DATASETS and (args.only in (None, "demo")):
        from dataloader import synthesize

        demo = args.out / "demo"
        if not (demo / "lesions.json").exists():
            synthesize(demo)
        DATASETS["demo"] = (demo, DATASETS["demo"][1])
    for dataset, (data, seeds) in DATASETS.items():
        if args.only and dataset != args.only:
            continue
        for name, extra in CONFIGS.items():
            if dataset == "demo" and any(skip in name for skip in DEMO_SKIP):
                continue
            for seed in seeds[:1] if any(o in name for o in ONE_SEED) else seeds:
                key = f"{dataset} | {name} | seed {seed}"
                if key in results:
                    continue
                results[key] = train(data, extra, seed, args.out)
                atomic_write_text(results_path, json.dumps(results, indent=1))
                print(key, results[key], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
