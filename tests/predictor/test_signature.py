"""By default the predictor loads only versions chosen with the deployment's token (their tags
carry a valid ``choice_signature`` of their own run): a version aliased in MLflow's own client
is refused before it is unpickled, and the version served before goes on serving."""

import logging

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from common import fingerprint
from dashboard.choose import choose_run
from predictor import ModelHolder
from predictor.app import create_app
from runs import ED25519_TAG, FILES_KEY, SIGNATURE_TAG, load_classifier, new_key_pair, sign_choice
from tests.conftest import log_untrained_run
from tests.predictor.conftest import move_alias_by_hand
from tests.tampering import code_running_weights


@pytest.fixture
def strict(settings):
    """The predictor's settings as deployed: unsigned versions are not served."""
    return settings.model_copy(update={"predictor_serve_unsigned": False})


@pytest.fixture
def loaded() -> list[str]:
    """Every model URI the holder below loads (unpickles), in turn."""
    return []


@pytest.fixture
def hold(loaded):
    """``hold(settings)``: a holder under ``settings`` whose every load is kept in ``loaded``."""

    def holder_of(settings) -> ModelHolder:
        def loader(uri: str, files: str | None):
            loaded.append(uri)
            mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
            return load_classifier(uri, files)

        return ModelHolder(settings, loader=loader, record=False)

    return holder_of


@pytest.fixture
def holder(strict, hold) -> ModelHolder:
    return hold(strict)


def test_a_version_aliased_by_hand_is_not_loaded_and_the_chosen_one_serves_on(
    strict, holder, loaded, served_runs
):
    choose_run(served_runs[0], "signed", strict, allow_unevaluated=True)
    assert holder.refresh() and holder.current.version == "1"
    by_hand = move_alias_by_hand(strict, served_runs[1])
    assert not holder.refresh()
    assert loaded == [f"models:/{strict.model_name}/1"]  # version 2 was never unpickled
    assert (holder.current.version, holder.current.stale) == ("1", True)
    assert f"version {by_hand} was not loaded: it carries no choice_signature" in holder.problem
    assert "PREDICTOR_SERVE_UNSIGNED=true" in holder.problem
    # the model is not unpickled, so its interface is unknown: the advice names the confirmation
    assert "such as --yes-interface-change" in holder.problem
    assert "an interface change still needs the confirmation" in holder.problem


def test_a_predictor_started_on_a_version_aliased_by_hand_serves_nothing(
    strict, holder, loaded, served_runs
):
    move_alias_by_hand(strict, served_runs[0])
    assert not holder.refresh()
    assert holder.current is None and loaded == []
    assert "python -m dashboard.choose" in holder.problem


def test_a_choices_tags_copied_onto_another_runs_version_are_refused(
    strict, holder, loaded, served_runs
):
    chosen = choose_run(served_runs[0], "signed", strict, allow_unevaluated=True)
    client = MlflowClient(strict.mlflow_tracking_uri)
    tags = client.get_model_version(strict.model_name, chosen.version).tags
    assert tags.get(SIGNATURE_TAG)
    copy = move_alias_by_hand(strict, served_runs[1])  # another run's model...
    for name, value in tags.items():  # ...under the chosen version's signed tags
        client.set_model_version_tag(strict.model_name, copy, name, value)
    assert not holder.refresh()
    assert loaded == []
    assert f"its signed tags name run {served_runs[0]!r}, the version is of run" in holder.problem


def test_with_a_signing_key_a_choice_signed_with_the_api_token_is_not_loaded(
    strict, hold, loaded, served_runs
):
    """PIPELINE_SIGNING_KEY: every /predict client holds the API token, not this key."""
    choose_run(served_runs[0], "signed with the token", strict, allow_unevaluated=True)
    keyed = strict.model_copy(update={"pipeline_signing_key": SecretStr("k" * 32)})
    holder = hold(keyed)
    assert not holder.refresh() and loaded == []
    assert "with the key of fingerprint" in holder.problem
    assert "which this service does not hold" in holder.problem  # not "choose it again"
    choose_run(served_runs[1], "signed with the key", keyed, allow_unevaluated=True)
    assert holder.refresh() and holder.current.version == "2"
    assert loaded == [f"models:/{strict.model_name}/2"]


def test_a_choice_signed_with_a_key_the_predictor_lacks_says_to_give_it_that_key_not_to_choose(
    strict, hold, served_runs
):
    """Choosing again with the same dashboard signs with the same key: no help."""
    choose_run(served_runs[0], "signed with the token", strict, allow_unevaluated=True)
    keyed = strict.model_copy(update={"pipeline_signing_key": SecretStr("k" * 32)})
    holder = hold(keyed)
    assert not holder.refresh()
    signer = fingerprint(strict.sealing_key)
    assert f"Give this predictor the key of fingerprint {signer} that signed it" in holder.problem
    # choosing again helps only where the dashboard has rotated away from that key since
    assert "Choose its run" not in holder.problem
    assert "no longer holds that key (rotated since), choose its run" in holder.problem


def test_a_choice_signed_with_a_former_key_is_served_after_the_rotation(
    strict, hold, loaded, served_runs
):
    """The rotation of docs/deployment.md: the old key listed in PIPELINE_PREVIOUS_TOKENS."""
    old, new = "o" * 32, "n" * 32
    before = strict.model_copy(update={"pipeline_signing_key": SecretStr(old)})
    choose_run(served_runs[0], "chosen before the rotation", before, allow_unevaluated=True)
    rotated = strict.model_copy(update={"pipeline_signing_key": SecretStr(new)})
    assert not hold(rotated).refresh() and loaded == []
    listed = rotated.model_copy(update={"pipeline_previous_tokens": SecretStr(old)})
    assert hold(listed).refresh()
    assert loaded == [f"models:/{strict.model_name}/1"]


def test_a_model_logged_into_the_chosen_run_under_its_copied_tags_is_never_unpickled(
    strict, holder, loaded, mlflow_server, demo_data, tmp_path
):
    """Whoever can write to MLflow logs other files into the chosen run itself and registers
    them with the chosen version's tags: the signature names the right run, and the weights
    could only be checked once unpickled. Their files' digest is not the one signed."""
    run_id = log_untrained_run(mlflow_server, demo_data, seed=3)  # its own: the files go in it
    chosen = choose_run(run_id, "signed", strict, allow_unevaluated=True)
    assert holder.refresh() and holder.current.version == chosen.version
    client = MlflowClient(strict.mlflow_tracking_uri)
    files = mlflow.artifacts.download_artifacts(chosen.model_uri, dst_path=str(tmp_path / "m"))
    marker = tmp_path / "code-ran"
    (weights,) = (tmp_path / "m" / "artifacts").iterdir()
    code_running_weights(weights, marker)  # the weights' file, now a pickle that runs code
    client.log_artifacts(run_id, files, "copy")
    source = f"{client.get_run(run_id).info.artifact_uri}/copy"
    copy = client.create_model_version(strict.model_name, source, run_id).version
    for name, value in client.get_model_version(strict.model_name, chosen.version).tags.items():
        client.set_model_version_tag(strict.model_name, copy, name, value)
    client.set_registered_model_alias(strict.model_name, strict.model_alias, copy)
    assert not holder.refresh()
    assert not marker.exists()  # nothing of it was unpickled
    assert f"models:/{strict.model_name}/{copy} was not loaded: its files' digest" in holder.problem
    assert (holder.current.version, holder.current.stale) == (chosen.version, True)


def test_a_version_chosen_by_an_earlier_release_serves_once_its_run_is_chosen_again(
    strict, holder, loaded, served_runs
):
    """As README's upgrade says: the choice again re-tags the same version, which is loaded at
    the next poll, not after the wait that spares refused versions a download at every poll."""
    chosen = choose_run(served_runs[0], "before the upgrade", strict, allow_unevaluated=True)
    client, name = MlflowClient(strict.mlflow_tracking_uri), strict.model_name
    earlier = client.get_model_version(name, chosen.version).tags
    del earlier[FILES_KEY]  # what an earlier release tagged and signed
    client.delete_model_version_tag(name, chosen.version, FILES_KEY)
    signature = sign_choice(earlier, strict.sealing_key)
    client.set_model_version_tag(name, chosen.version, SIGNATURE_TAG, signature)
    assert not holder.refresh() and loaded == []
    assert "it was chosen by an earlier release" in holder.problem
    choose_run(served_runs[0], "after the upgrade", strict, allow_unevaluated=True)
    assert holder.refresh() and holder.current.version == chosen.version


PAIR, OTHER = new_key_pair(), new_key_pair()
"""(private, public) of the choices' Ed25519 key pair, and of another pair."""


def _chooser(settings, private: str = PAIR[0]):
    """The dashboard's settings: the API token (the HMAC signature) and the private key."""
    return settings.model_copy(update={"pipeline_choice_private_key": SecretStr(private)})


@pytest.fixture
def verifier(strict):
    """The predictor's settings with the public key alone: no signing key, no API token."""
    return strict.model_copy(
        update={"pipeline_api_token": None, "pipeline_choice_public_key": PAIR[1]}
    )


def test_a_choice_made_with_the_private_key_is_served_by_a_predictor_holding_the_public_key(
    strict, verifier, hold, loaded, served_runs
):
    chosen = choose_run(served_runs[0], "signed", _chooser(strict), allow_unevaluated=True)
    holder = hold(verifier)
    assert holder.refresh() and holder.current.version == chosen.version
    assert loaded == [chosen.model_uri]


def test_with_the_public_key_a_version_aliased_by_hand_is_not_loaded(
    verifier, hold, loaded, served_runs
):
    holder = hold(verifier)
    by_hand = move_alias_by_hand(verifier, served_runs[0])
    assert not holder.refresh() and loaded == []
    assert f"version {by_hand} was not loaded: it carries no {ED25519_TAG}" in holder.problem
    how = "PIPELINE_CHOICE_PRIVATE_KEY set to the private key of PIPELINE_CHOICE_PUBLIC_KEY"
    assert f"{how} (python -m runs.keys makes a pair" in holder.problem


def test_with_the_public_key_a_choice_signed_with_the_hmac_key_alone_is_not_loaded(
    verifier, hold, loaded, served_runs
):
    """The predictor holding the signing key too: it signs choices no longer passing for one."""
    keyed = verifier.model_copy(update={"pipeline_signing_key": SecretStr("k" * 32)})
    choose_run(served_runs[0], "signed with the key", keyed, allow_unevaluated=True)
    assert not hold(keyed).refresh() and loaded == []


def test_tags_edited_after_the_ed25519_signature_are_refused_before_unpickling(
    strict, verifier, hold, loaded, served_runs
):
    chosen = choose_run(served_runs[0], "signed", _chooser(strict), allow_unevaluated=True)
    client = MlflowClient(strict.mlflow_tracking_uri)
    client.set_model_version_tag(strict.model_name, chosen.version, "selected_by", "someone else")
    holder = hold(verifier)
    assert not holder.refresh() and loaded == []
    assert f"its {ED25519_TAG} is no signature of its tags" in holder.problem


def test_a_choice_signed_by_another_key_pair_is_refused_before_unpickling(
    strict, verifier, hold, loaded, served_runs
):
    choose_run(served_runs[0], "signed", _chooser(strict, OTHER[0]), allow_unevaluated=True)
    holder = hold(verifier)
    assert not holder.refresh() and loaded == []
    assert "by the private key of PIPELINE_CHOICE_PUBLIC_KEY" in holder.problem


def test_ed25519_signed_tags_copied_onto_another_runs_version_are_refused(
    strict, verifier, hold, loaded, served_runs
):
    chosen = choose_run(served_runs[0], "signed", _chooser(strict), allow_unevaluated=True)
    client = MlflowClient(strict.mlflow_tracking_uri)
    tags = client.get_model_version(strict.model_name, chosen.version).tags
    assert tags.get(ED25519_TAG)
    copy = move_alias_by_hand(strict, served_runs[1])
    for name, value in tags.items():
        client.set_model_version_tag(strict.model_name, copy, name, value)
    holder = hold(verifier)
    assert not holder.refresh() and loaded == []
    assert f"its signed tags name run {served_runs[0]!r}, the version is of run" in holder.problem


def test_a_choice_signed_before_the_key_pair_s_rotation_is_served_while_its_key_is_listed(
    strict, verifier, hold, loaded, served_runs
):
    """docs/deployment.md: the former public key listed in PIPELINE_CHOICE_PREVIOUS_PUBLIC_KEYS."""
    choose_run(served_runs[0], "before", _chooser(strict, OTHER[0]), allow_unevaluated=True)
    listed = verifier.model_copy(update={"pipeline_choice_previous_public_keys": OTHER[1]})
    assert hold(listed).refresh()
    assert loaded == [f"models:/{strict.model_name}/1"]


def test_a_predictor_with_the_public_key_warns_of_a_signing_key_it_still_holds(verifier, caplog):
    keyed = verifier.model_copy(update={"pipeline_signing_key": SecretStr("k" * 32)})
    with caplog.at_level(logging.WARNING, logger="predictor"):
        create_app(keyed)
    assert "PIPELINE_SIGNING_KEY set though PIPELINE_CHOICE_PUBLIC_KEY checks" in caplog.text
