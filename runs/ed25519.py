"""The Ed25519 key pair of choices: the dashboard signs each choice with the private key
(``PIPELINE_CHOICE_PRIVATE_KEY``), the predictor verifies with the public one
(``PIPELINE_CHOICE_PUBLIC_KEY``), which signs nothing: whoever takes over the predictor cannot
make a choice it would serve. Keys and signatures are written as the base64 of their raw bytes
(32 bytes a key, 64 a signature): one line that fits a ``.env`` file or a Kubernetes Secret.

``python -m runs.keys`` prints a new pair (docs/deployment.md says where each key goes).
"""

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

PRIVATE_SETTING = "PIPELINE_CHOICE_PRIVATE_KEY"
PUBLIC_SETTING = "PIPELINE_CHOICE_PUBLIC_KEY"


def _text(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _public_text(key: Ed25519PublicKey) -> str:
    return _text(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def _private(private_key: str) -> Ed25519PrivateKey:
    """The private key of its text (``common.Settings`` checked its form)."""
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key, validate=True))


def new_key_pair() -> tuple[str, str]:
    """A new (private key, public key), each as the base64 of its 32 bytes."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return _text(raw), _public_text(key.public_key())


def public_key_of(private_key: str) -> str:
    """The public key (base64) of ``private_key`` (base64)."""
    return _public_text(_private(private_key).public_key())


def sign(message: bytes, private_key: str) -> str:
    """The Ed25519 signature (base64) of ``message`` by ``private_key`` (base64)."""
    return _text(_private(private_key).sign(message))


def verify(message: bytes, signature: str, public_key: str) -> bool:
    """Whether ``signature`` (base64) is one of ``message`` by ``public_key`` (base64); False
    for a signature or key that is not even of the right form."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
