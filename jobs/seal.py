"""Seals of the audit trail of model selections (``SelectionStore``): tamper evidence for a store
that anyone with its credentials can edit.

Each record carries ``seal``, an HMAC-SHA256 under the deployment's ``PIPELINE_API_TOKEN`` of its
own fields and of ``previous_seal``, the seal of the newest record stored before it, and
``sealed_with``, which token (a fingerprint; ``none``: a plain SHA-256, without a token). A
record edited in the store no longer matches its seal; a record removed leaves the next one's
``previous_seal`` naming no record; a record written by whoever lacks the token carries no valid
seal, and one without a seal, later than the first sealed record, is not this pipeline's. Not
detectable: the newest records removed before another is stored (the registry's
version tags still name the last choice: ``dashboard.trail``), and, without a token, an edit by
someone who recomputes the SHA-256. Records of one time may link one previous record each
(``record`` does not lock): the trail is then a tree, and each record still checks.
"""

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SEAL = "seal"
PREVIOUS = "previous_seal"
SEALED_WITH = "sealed_with"
_UNKEYED = "none"
_CONTEXT = b"mlpipeline selection seal v1\0"

CHANGED = (
    "changed in the store since it was stored: its fields no longer match its seal; the "
    "trail shows them as they are now, not as recorded"
)
MISSING_BEFORE = "the record stored before it was removed from the store"
UNSEALED = (
    "stored without a seal after records were sealed: not written by this pipeline (added in "
    "the store by hand?)"
)
OTHER_TOKEN = (
    "sealed under another PIPELINE_API_TOKEN (rotated since?): it cannot be checked with this one"
)


def fingerprint(key: str | None) -> str:
    """Which token sealed a record, without the token: 12 hex digits of a hash of it."""
    if not key:
        return _UNKEYED
    return hashlib.sha256(b"mlpipeline seal key\0" + key.encode()).hexdigest()[:12]


def seal(record: Mapping[str, Any], key: str | None) -> str:
    """The seal of ``record`` (its fields as ``SelectionStore`` returns them, ``previous_seal``
    and ``sealed_with`` included; ``seal`` itself left out) under the token ``key``."""
    fields = {name: value for name, value in record.items() if name != SEAL}
    message = _CONTEXT + json.dumps(fields, sort_keys=True, default=_canonical).encode()
    return hmac.new((key or "").encode(), message, hashlib.sha256).hexdigest()


def _canonical(value: Any) -> str:
    # MongoDB keeps milliseconds of a datetime, the embedded store microseconds: sealed as UTC ms
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds")
    raise TypeError(f"a selection record holds {type(value).__name__}, which it cannot seal")


def problem(record: Mapping[str, Any], key: str | None, stored: set[str],
            sealed_since: datetime | None) -> str | None:  # fmt: skip
    """Why ``record`` fails its check (``CHANGED``, ``MISSING_BEFORE``, ``OTHER_TOKEN``,
    ``UNSEALED``), or None: it checks, or was stored before records were sealed. ``stored``: the
    seals of the records its ``previous_seal`` may name (those the caller found in the store);
    ``sealed_since``: the time of the store's first sealed record (None: none is)."""
    if not record.get(SEAL):
        when = record.get("selected_at")
        if sealed_since is not None and isinstance(when, datetime) and when > sealed_since:
            return UNSEALED
        return None
    if record.get(SEALED_WITH) != fingerprint(key):
        return OTHER_TOKEN
    if not hmac.compare_digest(record[SEAL], seal(record, key)):
        return CHANGED
    if record.get(PREVIOUS) and record[PREVIOUS] not in stored:
        return MISSING_BEFORE
    return None
