"""The signature of a choice: an HMAC of a registered version's choice tags under the
deployment's signing key (``Settings.sealing_key``: ``PIPELINE_SIGNING_KEY``, else
``PIPELINE_API_TOKEN``), which ``dashboard.choose`` sets and which the audit trail
(``dashboard.trail``) and the predictor check. Whoever can write to MLflow but lacks the key
cannot make tags that pass for a choice, nor have the predictor load a version nobody chose."""

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from runs.digest import DIGEST_KEY

SIGNATURE_TAG = "choice_signature"
SIGNED_TAGS = ("run_id", "selected_by", "selected_at", "reason", DIGEST_KEY)
"""The tags a signature covers: which run and weights, who, when and why."""


def sign_choice(tags: Mapping[str, str], key: str) -> str:
    """The ``choice_signature`` of a choice's ``tags`` under ``key`` (the signing key)."""
    payload = json.dumps([tags.get(name) for name in SIGNED_TAGS], separators=(",", ":"))
    message = b"mlpipeline choice v1\0" + payload.encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_choice(tags: Mapping[str, str], key: str | Sequence[str]) -> bool:
    """Whether ``tags`` carry the signature ``sign_choice`` makes of them under ``key``, or
    under one of several keys (the current one and former ones: a rotation leaves the choices
    made before it signed under the old key)."""
    keys = [key] if isinstance(key, str) else list(key)
    found = tags.get(SIGNATURE_TAG) or ""
    return any(hmac.compare_digest(found, sign_choice(tags, k)) for k in keys if k)


def unsigned_problem(
    tags: Mapping[str, str], run_id: str | None, key: str | Sequence[str]
) -> str | None:
    """Why a version of run ``run_id`` with ``tags`` is no choice signed with ``key`` (or one of
    the keys); None when it is one. Its signed ``run_id`` must be its own run: tags copied from
    a chosen version onto a version of another run, or of none (registered from any source),
    keep a valid signature of the chosen run."""
    if not signed_choice(tags, key):
        if not tags.get(SIGNATURE_TAG):
            return "it carries no choice_signature (it was not chosen with this deployment's key)"
        return "its choice_signature does not match its tags (made with another key, or edited)"
    if tags.get("run_id") != run_id:
        return f"its signed tags name run {tags.get('run_id')!r}, the version is of run {run_id}"
    return None
