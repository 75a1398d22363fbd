"""Make the choices' Ed25519 key pair (``runs.ed25519``)::

    python -m runs.keys >> .env

prints two lines ready for a ``.env`` file: ``PIPELINE_CHOICE_PRIVATE_KEY=...``, a secret for the
dashboard (and the choose command) alone, and ``PIPELINE_CHOICE_PUBLIC_KEY=...`` for the
predictor (docs/deployment.md: where each goes in Compose and Kubernetes, and rotation).
"""

import argparse
import sys

from runs.ed25519 import PRIVATE_SETTING, PUBLIC_SETTING, new_key_pair


def get_args_parser() -> argparse.ArgumentParser:
    """No options: a parser so that ``--help`` (or a mistyped argument) prints usage, never a
    freshly made private key on a terminal."""
    return argparse.ArgumentParser(
        prog="python -m runs.keys",
        description="Print a new Ed25519 key pair for signing choices, as two .env lines "
        f"({PRIVATE_SETTING}: the dashboard's secret; {PUBLIC_SETTING}: the predictor's).",
        epilog="Usage: python -m runs.keys >> .env (docs/deployment.md).",
    )


def main(argv: list[str] | None = None) -> int:
    get_args_parser().parse_args(argv)
    private, public = new_key_pair()
    print("# The choices' key pair (docs/deployment.md): the private key to the dashboard only")
    print(f"{PRIVATE_SETTING}={private}")
    print(f"{PUBLIC_SETTING}={public}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
