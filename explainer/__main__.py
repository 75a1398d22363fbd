"""``python -m explainer --run-id ID [--n-samples N] [--methods ...]``: explain synchronously."""

import argparse
import sys

from common import InvalidInput, PipelineError, get_settings
from explainer.attributions import METHODS
from explainer.explain import (
    DEFAULT_N_SAMPLES,
    MAX_N_SAMPLES,
    MAX_SEED,
    check_request,
    explain_run,
)

FLAGS = {"n_samples": "--n-samples", "seed": "--seed"}
"""The command line's name of each request field it takes, as its messages name them."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m explainer",
        description="Explain a trained run's test predictions (SHAP, Integrated Gradients, "
        "Grad-CAM) with a faithfulness score; results are logged to the run under explanations/.",
    )
    parser.add_argument("--run-id", required=True, help="MLflow run id of a trained model")
    parser.add_argument(
        "--n-samples",
        type=int,
        default=DEFAULT_N_SAMPLES,
        help=f"test images to explain, 1-{MAX_N_SAMPLES} (default {DEFAULT_N_SAMPLES})",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, help="attribution methods (default: all)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help=f"seed of the sample, 0-{MAX_SEED} (default 0)"
    )
    parser.add_argument("--data-dir", help="dataset folder or .npz (default: the run's data_dir)")
    args = parser.parse_args(argv)
    try:  # the ranges of the explainer's own check, which every request passes: its words too
        check_request(args.n_samples, args.methods, args.seed, names=FLAGS)
    except InvalidInput as exc:
        parser.error(str(exc))
    settings = get_settings()
    try:
        result = explain_run(
            args.run_id,
            settings.mlflow_tracking_uri,
            n_samples=args.n_samples,
            methods=args.methods,
            seed=args.seed,
            data_dir=args.data_dir,
            progress=True,
            data_root=settings.data_dir,
        )
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = result["n_samples"]
    asked = f" ({args.n_samples} asked: the test split has only {n})" if n < args.n_samples else ""
    print(f"run {result['run_id']}: explained {n} test images{asked}")
    print(f"{'method':<22} {'deletion AUC':>12} {'random AUC':>10} {'score':>7}")
    for method, entry in result["deletion"].items():
        auc, random_auc, score = entry["auc"], entry["random_auc"], entry["score"]
        print(f"{method:<22} {auc:>12.4f} {random_auc:>10.4f} {score:>7.4f}")
    if result["ig_convergence_delta"] is not None:
        print(f"IG mean |convergence delta|: {result['ig_convergence_delta']:.4g}")
    print(f"artifacts: {result['artifact_path']}/ ({len(result['files'])} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
