"""The signature of a choice (``runs.choice``): which versions it lets pass for chosen."""

from runs import FILES_KEY, SIGNATURE_TAG, sign_choice, signed_choice, unsigned_problem

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
