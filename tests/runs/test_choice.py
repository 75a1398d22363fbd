"""The signature of a choice (``runs.choice``): which versions it lets pass for chosen."""

from runs import SIGNATURE_TAG, sign_choice, signed_choice, unsigned_problem

KEY, OLD = "k" * 32, "o" * 32
TAGS = {"run_id": "a" * 32, "selected_by": "dr. x", "selected_at": "2026-12-07T05:00:00.000+00:00",
        "reason": "best AUC", "weights_digest": "d" * 64}  # fmt: skip


def _signed(key: str) -> dict:
    return {**TAGS, SIGNATURE_TAG: sign_choice(TAGS, key)}


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
