"""The signature of a choice (``runs.choice``): which versions it lets pass for chosen."""

from common import fingerprint
from runs import (
    ED25519_TAG,
    FILES_KEY,
    KEY_TAG,
    SIGNATURE_TAG,
    new_key_pair,
    sign_choice,
    sign_choice_ed25519,
    signed_choice,
    unsigned_problem,
    unverified_problem,
    verified_choice,
)

KEY, OLD = "k" * 32, "o" * 32
BEFORE = {"run_id": "a" * 32, "selected_by": "dr. x", "reason": "best AUC",
          "selected_at": "2026-12-07T05:00:00.000+00:00", "weights_digest": "d" * 64}  # fmt: skip
"""The tags of a choice made before choices recorded the model's files (2026-12-07)."""
TAGS = {**BEFORE, FILES_KEY: "f" * 64}


def _signed(key: str, tags: dict = TAGS) -> dict:
    return {**tags, SIGNATURE_TAG: sign_choice(tags, key)}


def test_a_choice_passes_for_its_own_run_only():
    assert unsigned_problem(_signed(KEY), "a" * 32, KEY) is None
    assert unsigned_problem(_signed(KEY), "b" * 32, KEY).startswith("its signed tags name run")


def test_copied_tags_on_a_version_of_no_run_do_not_pass():
    """MLflow registers a version from a source without a run: the chosen run's tags copied
    onto it kept a valid signature, and the run check was skipped."""
    assert unsigned_problem(_signed(KEY), None, KEY).endswith("the version is of run None")


def test_a_former_key_signs_for_as_long_as_it_is_listed():
    assert signed_choice(_signed(OLD), [KEY, OLD]) and not signed_choice(_signed(OLD), KEY)
    assert unsigned_problem(_signed(OLD), "a" * 32, [KEY]).startswith("its choice_signature does")
    edited = {**_signed(KEY), "reason": "another reason"}
    assert not signed_choice(edited, [KEY, OLD])


def test_the_files_digest_is_signed_and_cannot_be_removed():
    """Without the tag, a signature over the other tags would be a valid one of a choice made
    before the digest; the signature of a choice with it covers it, so dropping it breaks it."""
    dropped = {k: v for k, v in _signed(KEY).items() if k != FILES_KEY}
    assert not signed_choice(dropped, KEY)
    assert not signed_choice({**_signed(KEY), FILES_KEY: "e" * 64}, KEY)


def test_a_choice_made_before_the_files_digest_stays_signed_but_is_not_served():
    """The audit trail still verifies it; the predictor cannot check its files before loading."""
    assert signed_choice(_signed(KEY, BEFORE), KEY)
    assert "before choices recorded the digest of the model's files" in unsigned_problem(
        _signed(KEY, BEFORE), "a" * 32, KEY
    )


PAIR, OTHER = new_key_pair(), new_key_pair()
"""(private, public) of the choices' Ed25519 key pair, and of another pair."""


def _sealed(private: str, tags: dict = TAGS) -> dict:
    return {**tags, ED25519_TAG: sign_choice_ed25519(tags, private)}


def test_an_ed25519_signature_passes_with_the_public_key_alone():
    assert unverified_problem(_sealed(PAIR[0]), "a" * 32, [PAIR[1]]) is None


def test_tags_edited_after_the_ed25519_signature_do_not_pass():
    edited = {**_sealed(PAIR[0]), "reason": "another reason"}
    assert unverified_problem(edited, "a" * 32, [PAIR[1]]).startswith(
        "its choice_signature_ed25519 is no signature of its tags"
    )


def test_an_ed25519_signature_by_another_key_pair_does_not_pass():
    assert not verified_choice(_sealed(OTHER[0]), [PAIR[1]])


def test_an_ed25519_signed_choice_passes_for_its_own_run_only():
    assert unverified_problem(_sealed(PAIR[0]), "b" * 32, [PAIR[1]]).startswith(
        "its signed tags name run"
    )


def test_a_former_public_key_verifies_for_as_long_as_it_is_listed():
    assert verified_choice(_sealed(OTHER[0]), [PAIR[1], OTHER[1]])


def test_the_hmac_signature_alone_does_not_pass_for_an_ed25519_one():
    assert unverified_problem(_signed(KEY), "a" * 32, [PAIR[1]]) == (
        "it carries no choice_signature_ed25519 (it was not chosen with "
        "PIPELINE_CHOICE_PRIVATE_KEY set)"
    )


def test_a_malformed_ed25519_signature_does_not_pass():
    assert not verified_choice({**TAGS, ED25519_TAG: "not base64!"}, [PAIR[1]])


def test_a_signature_by_a_key_the_service_lacks_is_told_from_edited_tags():
    """By the signing key's fingerprint the choice records: choosing again cannot mend the
    first (the key must be given to the service); the second is a sign of tampering."""
    signed = {**_signed(OLD), KEY_TAG: fingerprint(OLD)}
    lacking = unsigned_problem(signed, "a" * 32, [KEY])
    assert f"with the key of fingerprint {fingerprint(OLD)}, which this service" in lacking
    assert f"(it holds {fingerprint(KEY)})" in lacking and "PIPELINE_SIGNING_KEY" in lacking
    edited = {**signed, "reason": "another reason"}
    assert unsigned_problem(edited, "a" * 32, [KEY, OLD]).endswith("its tags were edited since")
