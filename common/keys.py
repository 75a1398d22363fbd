"""The formats of the pipeline's keys in settings: fingerprints of sealing keys, the choices'
Ed25519 keys, secrets and comma-separated lists as they come from the environment."""

import base64
import binascii
import hashlib
import re

from pydantic import SecretStr

FINGERPRINT = re.compile(r"none|[0-9a-f]{12}")
_UNKEYED = "none"


def fingerprint(key: str | None) -> str:
    """Which key sealed a record or signed a choice, without the key: 12 hex digits of a hash
    of it (``none``: no key)."""
    if not key:
        return _UNKEYED
    return hashlib.sha256(b"mlpipeline seal key\0" + key.encode()).hexdigest()[:12]


def is_fingerprint(entry: str) -> bool:
    """Whether an entry of ``PIPELINE_PREVIOUS_TOKENS`` names a former key by its fingerprint
    (12 hex digits of ``fingerprint``; ``none``: no key) rather than whole (a key has
    at least 24 characters)."""
    return FINGERPRINT.fullmatch(entry) is not None


def strip_secret(key: SecretStr | None, least: int, refusal: str) -> SecretStr | None:
    """``key`` stripped (a secret made from a file ends with a newline); None when unset or
    empty, as Compose passes an unset variable; ``ValueError(refusal)`` when shorter than
    ``least`` characters."""
    value = key.get_secret_value().strip() if key is not None else ""
    if not value:
        return None
    if len(value) < least:
        raise ValueError(refusal)
    return SecretStr(value)


def check_choice_key(value: str, entry: str = "") -> str:
    """``value`` when it is a key of the choices' pair as ``python -m runs.keys`` prints it (the
    base64 of 32 bytes); otherwise ``ValueError`` (which never shows the value), saying which
    ``entry`` of a list it is."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            f"{entry}must be an Ed25519 key as `python -m runs.keys` prints it (the base64 of 32 "
            "bytes: 44 characters ending in =); copy the whole value after the = of its line"
        )
    return value


def comma_entries(value: str) -> list[str]:
    # a Kubernetes secret or `.env` line made from a file ends with a newline
    return [entry.strip() for entry in value.split(",") if entry.strip()]
