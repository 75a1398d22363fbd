"""With ``PIPELINE_CHOICE_PRIVATE_KEY`` a choice is signed with it too (the tag
``choice_signature_ed25519``, over what the HMAC ``choice_signature`` signs); without it, as
before."""

from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from dashboard.choose import choose_run
from runs import ED25519_TAG, SIGNATURE_TAG, new_key_pair, unverified_problem
from tests.conftest import log_untrained_run

PRIVATE, PUBLIC = new_key_pair()


def _tags(settings, version: str) -> dict[str, str]:
    return (
        MlflowClient(settings.mlflow_tracking_uri)
        .get_model_version(settings.model_name, version)
        .tags
    )


def test_a_choice_with_the_private_key_carries_its_signature_and_the_hmac_one(
    settings, tiny_demo_data
):
    both = {"pipeline_api_token": "t" * 32, "pipeline_choice_private_key": SecretStr(PRIVATE)}
    keyed = settings.model_copy(update=both)
    run_id = log_untrained_run(settings.mlflow_tracking_uri, tiny_demo_data, seed=46)
    tags = _tags(keyed, choose_run(run_id, "signed", keyed, allow_unevaluated=True).version)
    assert unverified_problem(tags, run_id, [PUBLIC]) is None
    assert tags[SIGNATURE_TAG]  # the audit trail's


def test_choosing_again_without_the_private_key_drops_the_former_signature(
    settings, tiny_demo_data
):
    """Its tags describe the new choice: the former signature would be of other tags."""
    keyed = settings.model_copy(update={"pipeline_choice_private_key": SecretStr(PRIVATE)})
    run_id = log_untrained_run(settings.mlflow_tracking_uri, tiny_demo_data, seed=47)
    choose_run(run_id, "signed", keyed, allow_unevaluated=True)
    again = choose_run(run_id, "again, unsigned", settings, allow_unevaluated=True)
    assert again.already and ED25519_TAG not in _tags(settings, again.version)
