"""``python -m trainer --data-dir DIR --experiment NAME``: prints the MLflow run id last.

Exit status 0 on success, 2 with one clear line on stderr for bad input or an unreachable MLflow
server (argparse also exits 2 for bad flags), 3 when ``--max-epochs-this-session`` stopped the
run before its last epoch (KILLED, checkpoint kept), 130/143 when interrupted or terminated.
"""

import signal
import sys
import threading

from common import PipelineError, configure_logging, get_settings
from trainer import distributed
from trainer.resume import given_options
from trainer.train import get_args_parser, main


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, a Kubernetes pod stopping), handled as Ctrl-C is: the MLflow
    run is marked KILLED and the checkpoint kept for ``--resume auto``."""


def _terminate(signum, frame) -> None:
    raise Terminated


def run(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    configure_logging(get_settings().log_level)  # its log lines; what it prints stays as is
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        run_id = main(args, given_options(sys.argv[1:] if argv is None else argv))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how = "stopped (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"{how}; continue with --resume auto", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    if distributed.from_environment().is_main:
        print(run_id, flush=True)
    if getattr(args, "stopped_early", False):  # --max-epochs-this-session ended the session
        print(
            "stopped at --max-epochs-this-session: the run is KILLED with its checkpoint; "
            "continue with --resume auto",
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(run())
