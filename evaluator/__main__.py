"""``python -m evaluator --run-id ID [--data-dir DIR] [--batch-size N]``: evaluate synchronously."""

import argparse
import sys

from common import PipelineError, get_settings
from dataloader import describe_skipped
from evaluator.evaluate import evaluate_run
from runs import contract, inference, schemas


def format_table(report: dict) -> str:
    """The metrics of a report as a plain-text table with their 95% intervals."""
    rows = [("metric", "value", "95% CI", "method")]

    def add(name: str, est: dict) -> None:
        if est["value"] is None:
            rows.append((name, "n/a", est.get("reason", ""), est.get("method", "")))
            return
        low, high = est.get("ci_low"), est.get("ci_high")
        ci = f"[{low:.4f}, {high:.4f}]" if low is not None and high is not None else "-"
        rows.append((name, f"{est['value']:.4f}", ci, est.get("method", "")))

    for name, est in report["overall"].items():
        add(name, est)
    for cls, values in report["per_class"].items():
        for name, est in values.items():
            if isinstance(est, dict) and name != "recall":  # recall = sensitivity
                add(f"{name} [{cls}]", est)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _ci(est: dict) -> str:
    if est["value"] is None:
        return "n/a"
    return f"{est['value']:.3f} [{est['ci_low']:.3f}, {est['ci_high']:.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluator",
        description="Evaluate a trained run on its test split; results are logged to the run.",
    )
    parser.add_argument("--run-id", required=True, help="MLflow run id of a trained model")
    parser.add_argument("--data-dir", help="dataset folder or .npz (default: the run's data_dir)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=inference.BATCH_SIZE,
        help=f"images per batch (1-{inference.MAX_BATCH_SIZE})",
    )
    parser.add_argument(
        "--tta",
        choices=inference.TTA_CHOICES,
        default="none",
        help="test-time augmentation: average the predictions over the image and its flips",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch_size <= inference.MAX_BATCH_SIZE:
        parser.error(
            f"--batch-size must be between 1 and {inference.MAX_BATCH_SIZE}, got {args.batch_size}"
        )
    settings = get_settings()
    try:
        report = evaluate_run(
            args.run_id,
            settings.mlflow_tracking_uri,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
            progress=True,
            data_root=settings.data_dir,
            tta=args.tta,
        )
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"run {report['run_id']}: {report['n_samples']} test images from {report['data_dir']}")
    skipped = report.get("skipped") or {}
    files, count = skipped.get("files", []), skipped.get("count")
    if line := describe_skipped(files, contract.METRICS_JSON, count):
        print(line)
    typed = schemas.EvaluationReport.model_validate(report)
    for note in (typed.absent_note, typed.decoding_note):
        if note:
            print(note)
    print(format_table(report))
    threshold = report["operating_points"].get("threshold")
    if threshold is not None:
        print(
            f"at the threshold chosen on validation ({threshold['positive_class']!r} when its "
            f"probability >= {threshold['threshold']:.4f}, target sensitivity "
            f"{threshold['target_sensitivity']}):"
        )
        for cls, values in threshold["per_class"].items():
            sens, spec = values["sensitivity"], values["specificity"]
            print(f"  {cls}: sensitivity {_ci(sens)}, specificity {_ci(spec)}")
        if "accuracy" in threshold:
            print(
                f"  accuracy {_ci(threshold['accuracy'])}, PPV {_ci(threshold['ppv'])}, "
                f"NPV {_ci(threshold['npv'])}"
            )
        if caveat := threshold.get("caveat"):
            print(f"  caveat: {caveat}")
    if ood := report.get("out_of_distribution"):
        print(
            f"out of distribution: {ood['flagged']} of {ood['images']} test images flagged as "
            f"unlike the training images (about {ood['expected_rate']:.1%} expected)"
        )
        if ood["note"]:
            print(f"  note: {ood['note']}")
    else:  # as its answers' null out_of_distribution: not checked, never "none flagged"
        print(
            "out of distribution: not checked (the model carries no out-of-distribution check: "
            "nothing flags images unlike its training images)"
        )
    print(f"artifacts: {', '.join(report['artifacts'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
