"""``python -m trainer --data-dir DIR --experiment NAME``: prints the MLflow run id last.

Exit status 0 on success, 2 with one clear line on stderr for bad input or an unreachable MLflow
server (argparse also exits 2 for bad flags).
"""

import sys

from common import PipelineError
from trainer import distributed
from trainer.train import get_args_parser, main


def run(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        run_id = main(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume auto", file=sys.stderr)
        return 130
    if distributed.from_environment().is_main:
        print(run_id, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
