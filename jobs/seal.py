"""Seals of the audit trail of model selections (``SelectionStore``): tamper evidence for a store
that anyone with its credentials can edit.

Each record carries ``seal``, an HMAC-SHA256 under the deployment's sealing key
(``PIPELINE_SIGNING_KEY``, else ``PIPELINE_API_TOKEN``: ``Settings.sealing_key``) of its
own fields, its place in the trail (``seq``) and ``previous_seal`` (the seal of the newest record
stored before it), and ``sealed_with``, which token (a fingerprint; ``none``: a plain SHA-256,
without a token). A record edited or moved in the store no longer matches its seal; a record
removed leaves the next one's ``previous_seal`` naming no record; a record written by whoever
lacks the token carries no valid seal, or another token's after this one's first record; one
without a seal, later than the first sealed record, is not this pipeline's.

``sealed_with`` is the record's own claim, as editable as the rest: which tokens sealed the trail
before this one comes from the operator (``PIPELINE_PREVIOUS_TOKENS``, ``former_keys``), never
from the store. A record under a former token kept there is checked with it like one under this
token; under a former token declared by its fingerprint only, it cannot be checked
(``OTHER_TOKEN``); under any other, it fails (``UNDECLARED_TOKEN``): a forger who rewrites records
and names a made-up token gains nothing, and neither does one who moves where this token's
records begin (the first record claiming it, taken from the store) by rewriting the oldest of
them to claim another token: a kept former token's check or an undeclared one fails them.

Not detectable: the newest records removed before another is stored (the registry's version tags
still name the last choice: ``dashboard.trail``); every seal stripped from the store at once, or
a record inserted among those from before seals (nothing outside the store anchors the trail);
records rewritten or added under a former token declared by its fingerprint only, before this
token's first record, the oldest records under this token too when rewritten to claim that
fingerprint (keep the token itself to have them checked); without a token, an edit by
someone who recomputes the SHA-256. Records of one time may link one previous record each
(``record`` does not lock): the trail is then a tree, each record checks.
"""

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common import fingerprint, is_fingerprint

SEAL = "seal"
PREVIOUS = "previous_seal"
SEALED_WITH = "sealed_with"
_CONTEXT = b"mlpipeline selection seal v1\0"

CHANGED = (
    "changed in the store since it was stored: its fields no longer match its seal; the "
    "trail shows them as they are now, not as recorded"
)
MISSING_BEFORE = "the record stored before it was removed from the store"
UNSEALED = (
    "stored without a seal after records were sealed: added in the store by hand, or written "
    "by a dashboard or CLI of a release before 2026-12-07"
)
WITHOUT_TOKEN = (
    "sealed without a token after records sealed with this deployment's: written by a dashboard "
    "or `python -m dashboard.choose` run without PIPELINE_SIGNING_KEY or PIPELINE_API_TOKEN "
    "(set it there), or forged; "
    "it cannot be checked"
)
FOREIGN_TOKEN = (
    "sealed under another token after records sealed with this deployment's: written by a "
    "service with another PIPELINE_SIGNING_KEY or PIPELINE_API_TOKEN, or forged; it cannot be "
    "checked"
)
OTHER_TOKEN = (
    "sealed under a former token or signing key that PIPELINE_PREVIOUS_TOKENS names by its "
    "fingerprint only (rotated since): it cannot be checked without that key"
)
UNDECLARED_TOKEN = (
    "sealed under a key that is neither this deployment's (PIPELINE_SIGNING_KEY, else "
    "PIPELINE_API_TOKEN) nor a former one "
    "declared in PIPELINE_PREVIOUS_TOKENS: forged (its sealed_with made up to pass for a "
    "rotation), or the token was rotated without declaring the former one there "
    "(docs/deployment.md); it cannot be checked"
)


def former_keys(entries: Iterable[str]) -> dict[str, str | None]:
    """The former tokens an operator declared (``PIPELINE_PREVIOUS_TOKENS``), by fingerprint: the
    token where an entry is one (its seals are checked with it), None where an entry is only its
    fingerprint (its seals cannot be checked)."""
    keys: dict[str, str | None] = {}
    for entry in entries:
        if is_fingerprint(entry):
            keys.setdefault(entry, None)
        else:
            keys[fingerprint(entry)] = entry
    return keys


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


@dataclass(frozen=True)
class Order:
    """Where the store's sealed records begin (``seq``; None: none is): the first sealed one,
    and the first sealed under the current token."""

    sealed: int | None
    this_token: int | None


def problem(
    record: Mapping[str, Any],
    key: str | None,
    stored: set[str],
    order: Order,
    former: Mapping[str, str | None] | None = None,
) -> str | None:
    """Why ``record`` (as stored, ``seq`` included) fails its check, or None: it checks, or was
    stored before records were sealed. ``stored``: the seals of the records its
    ``previous_seal`` may name (those the caller found in the store); ``former``: the former
    tokens the operator declared (``former_keys``).

    Another token's seal later than the first record sealed under this one is a writer without
    this deployment's token (``WITHOUT_TOKEN``, ``FOREIGN_TOKEN``), declared or not. Before it,
    a declared former token's seal is checked with that token, or is ``OTHER_TOKEN`` when only
    its fingerprint is declared; any other token's is ``UNDECLARED_TOKEN``. A record without a
    seal later than the first sealed one is ``UNSEALED``.

    Raises:
        TypeError, ValueError: Fields no record of this pipeline holds (the caller's
            ``CHANGED``).
    """
    seq = record.get("seq")
    if not record.get(SEAL):
        if order.sealed is not None and (not isinstance(seq, int) or seq > order.sealed):
            return UNSEALED
        return None
    sealed_with = record.get(SEALED_WITH)
    if sealed_with != fingerprint(key):
        if order.this_token is not None and (not isinstance(seq, int) or seq > order.this_token):
            return WITHOUT_TOKEN if sealed_with == fingerprint(None) else FOREIGN_TOKEN
        if not isinstance(sealed_with, str) or sealed_with not in (former or {}):
            return UNDECLARED_TOKEN
        key = (former or {})[sealed_with]
        if key is None:
            return OTHER_TOKEN
    if not hmac.compare_digest(str(record[SEAL]), seal(record, key)):
        return CHANGED
    if record.get(PREVIOUS) and record[PREVIOUS] not in stored:
        return MISSING_BEFORE
    return None
