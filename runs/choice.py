"""The signature of a choice: an HMAC of a registered version's choice tags under the
deployment's signing key (``Settings.sealing_key``: ``PIPELINE_SIGNING_KEY``, else
``PIPELINE_API_TOKEN``), which ``dashboard.choose`` sets and which the audit trail
(``dashboard.trail``) and the predictor check. Whoever can write to MLflow but lacks the key
cannot make tags that pass for a choice, nor have the predictor load a version nobody chose.

With the choices' Ed25519 key pair (``runs.ed25519``), the dashboard also signs the same message
with the private key (tag ``choice_signature_ed25519``) and a predictor given the public key
checks that signature instead (``unverified_problem``): it holds no secret that signs choices."""

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from common import fingerprint
from runs import ed25519
from runs.digest import DIGEST_KEY, FILES_KEY

SIGNATURE_TAG = "choice_signature"
KEY_TAG = "choice_key"
"""The fingerprint (``common.fingerprint``) of the key that made ``choice_signature``: a service
refusing the signature tells another key from edited tags by it (not signed: a hint only)."""
ED25519_TAG = "choice_signature_ed25519"
"""The choice's Ed25519 signature (base64) by ``PIPELINE_CHOICE_PRIVATE_KEY``."""
SIGNED_TAGS = ("run_id", "selected_by", "selected_at", "reason", DIGEST_KEY, FILES_KEY)
"""The tags a signature covers: which run, weights and files, who, when and why."""


def _message(tags: Mapping[str, str]) -> bytes:
    """What both signatures of a choice sign: its ``SIGNED_TAGS``.

    Choices made before versions recorded ``files_digest`` were signed over the other tags
    (v1); their signatures stay valid for the audit trail. A v2 signature covers the files'
    digest: removing that tag from a choice's tags breaks it too."""
    version, names = (2, SIGNED_TAGS) if tags.get(FILES_KEY) else (1, SIGNED_TAGS[:-1])
    payload = json.dumps([tags.get(name) for name in names], separators=(",", ":"))
    return f"mlpipeline choice v{version}\0".encode() + payload.encode()


def sign_choice(tags: Mapping[str, str], key: str) -> str:
    """The ``choice_signature`` of a choice's ``tags`` under ``key`` (the signing key)."""
    return hmac.new(key.encode(), _message(tags), hashlib.sha256).hexdigest()


def sign_choice_ed25519(tags: Mapping[str, str], private_key: str) -> str:
    """The ``choice_signature_ed25519`` of a choice's ``tags`` by ``private_key`` (base64)."""
    return ed25519.sign(_message(tags), private_key)


def verified_choice(tags: Mapping[str, str], public_keys: Sequence[str]) -> bool:
    """Whether ``tags`` carry a ``choice_signature_ed25519`` of them by the private key of one
    of ``public_keys`` (the current one and former ones, after a rotation)."""
    found = tags.get(ED25519_TAG) or ""
    return bool(found) and any(ed25519.verify(_message(tags), found, k) for k in public_keys if k)


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
        return _mismatch(tags, [key] if isinstance(key, str) else list(key))
    return _chosen_problem(tags, run_id)


def foreign_signer(tags: Mapping[str, str], keys: Sequence[str]) -> str | None:
    """The fingerprint (tag ``KEY_TAG``) of the key that made the ``choice_signature`` of
    ``tags`` when none of ``keys`` verifies it and none has that fingerprint: signed with a key
    this service lacks, which choosing again with the same dashboard would use again (a hint,
    not proof: the tag is not signed); None otherwise."""
    signer = tags.get(KEY_TAG)
    if not signer or not tags.get(SIGNATURE_TAG) or signed_choice(tags, keys):
        return None
    return None if signer in {fingerprint(k) for k in keys if k} else signer


def _mismatch(tags: Mapping[str, str], keys: Sequence[str]) -> str:
    """Why a ``choice_signature`` that does not match ``tags`` under ``keys`` fails, in words
    that say what to do: signed with a key this service lacks (by ``KEY_TAG``), or edited."""
    held = [fingerprint(k) for k in keys if k]
    signer = tags.get(KEY_TAG)
    if signer and signer not in held:
        return (
            f"its choice_signature was made, by its unsigned tag {KEY_TAG} (a hint, not proof), "
            f"with the key of fingerprint {signer}, which this service does not hold (it holds "
            f"{', '.join(held)}): give it the key the dashboard "
            "signs with (PIPELINE_SIGNING_KEY, else PIPELINE_API_TOKEN), or list a former one "
            "in PIPELINE_PREVIOUS_TOKENS; choosing again with the dashboard's key does not "
            "change that"
        )
    if signer:
        return (
            f"its choice_signature does not match its tags, though made with the key of "
            f"fingerprint {signer}, which this service holds: its tags were edited since"
        )
    return "its choice_signature does not match its tags (made with another key, or edited)"


def unverified_problem(
    tags: Mapping[str, str], run_id: str | None, public_keys: Sequence[str]
) -> str | None:
    """As ``unsigned_problem``, for the Ed25519 signature by the private key of one of
    ``public_keys`` (``PIPELINE_CHOICE_PUBLIC_KEY``, ``PIPELINE_CHOICE_PREVIOUS_PUBLIC_KEYS``)."""
    if not verified_choice(tags, public_keys):
        if not tags.get(ED25519_TAG):
            return (
                f"it carries no {ED25519_TAG} (it was not chosen with PIPELINE_CHOICE_PRIVATE_KEY "
                "set)"
            )
        return (
            f"its {ED25519_TAG} is no signature of its tags by the private key of "
            "PIPELINE_CHOICE_PUBLIC_KEY nor of PIPELINE_CHOICE_PREVIOUS_PUBLIC_KEYS (made with "
            "another key pair, or its tags edited since)"
        )
    return _chosen_problem(tags, run_id)


def _chosen_problem(tags: Mapping[str, str], run_id: str | None) -> str | None:
    """Why validly signed ``tags`` are still no choice of a version of run ``run_id``."""
    if tags.get("run_id") != run_id:
        return f"its signed tags name run {tags.get('run_id')!r}, the version is of run {run_id}"
    if not tags.get(FILES_KEY):
        return (
            "it was chosen by an earlier release, before choices recorded the digest of the "
            f"model's files ({FILES_KEY}), without which its files cannot be checked before "
            "they are loaded"
        )
    return None
