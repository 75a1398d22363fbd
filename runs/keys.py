"""Make the choices' Ed25519 key pair (``runs.ed25519``)::

    python -m runs.keys >> .env

prints two lines ready for a ``.env`` file: ``PIPELINE_CHOICE_PRIVATE_KEY=...``, a secret for the
dashboard (and the choose command) alone, and ``PIPELINE_CHOICE_PUBLIC_KEY=...`` for the
predictor (docs/deployment.md: where each goes in Compose and Kubernetes, and rotation).
"""

import sys

from runs.ed25519 import PRIVATE_SETTING, PUBLIC_SETTING, new_key_pair


def main() -> int:
    private, public = new_key_pair()
    print("# The choices' key pair (docs/deployment.md): the private key to the dashboard only")
    print(f"{PRIVATE_SETTING}={private}")
    print(f"{PUBLIC_SETTING}={public}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
