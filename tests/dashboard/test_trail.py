"""A choice that ended after its alias moved, before its record: the next choice records it from
the version's tags, and the Deploy tab does not call it a move outside the dashboard."""

from datetime import UTC, datetime

import pytest
from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from common import ServiceUnavailable, Settings
from dashboard.choose import choose_run
from dashboard.tabs.deploy import unrecorded_move
from dashboard.trail import RECOVERED, choice_tags, edited_choice, public_keys_of
from runs import ED25519_TAG, new_key_pair, sign_choice, sign_choice_ed25519


def _interrupted(run_id: str, settings) -> str:
    """Choose ``run_id`` as a choice ended before its record does: alias moved, no record."""
    return choose_run(run_id, "sharper on dense tissue", settings, None,
                      allow_unevaluated=True, selected_by="bo").version  # fmt: skip


def test_the_next_choice_records_a_choice_that_ended_before_its_record(
    dashboard_runs, settings, store
):
    choose_run(dashboard_runs["bare"], "first", settings, store, selected_by="ana",
               allow_unevaluated=True)  # fmt: skip
    version = _interrupted(dashboard_runs["pipeline"], settings)
    choose_run(dashboard_runs["bare"], "back to the first", settings, store,
               selected_by="ana", allow_unevaluated=True)  # fmt: skip
    third, recovered, _ = store.recent(action="choose")
    assert (recovered["version"], recovered["run_id"]) == (version, dashboard_runs["pipeline"])
    assert (recovered["selected_by"], recovered["reason"]) == ("bo", "sharper on dense tissue")
    assert recovered["recovered"] == RECOVERED and "recovered" not in third
    # which evaluation its figures were of, as the choice itself would have recorded
    assert recovered["evaluation"]["evaluation_path"] == dashboard_runs["evaluation"]
    run = MlflowClient(settings.mlflow_tracking_uri).get_run(dashboard_runs["pipeline"])
    assert recovered["lineage"]["dataset_hash"] == run.data.params["dataset_hash"]  # made of


def test_a_choice_tag_edited_by_hand_does_not_stop_the_next_choice(dashboard_runs, settings, store):
    choose_run(dashboard_runs["pipeline"], "first", settings, store)
    version = _interrupted(dashboard_runs["bare"], settings)
    MlflowClient(settings.mlflow_tracking_uri).set_model_version_tag(
        settings.model_name, version, "selected_at", "yesterday"
    )
    choose_run(dashboard_runs["pipeline"], "back", settings, store)  # no traceback
    assert [r["reason"] for r in store.recent(action="choose")] == ["back", "first"]


def test_choice_tags_copied_onto_another_version_by_hand_are_not_recorded(
    dashboard_runs, settings, store
):
    """Anyone who can write to MLflow can set tags: copied from another version (its run named,
    a time of their choosing), they make no record in the trail."""
    client = MlflowClient(settings.mlflow_tracking_uri)
    first = choose_run(dashboard_runs["pipeline"], "first", settings, store)
    tags = client.get_model_version(settings.model_name, first.version).tags
    forged = client.create_model_version(
        settings.model_name, f"runs:/{dashboard_runs['bare']}/model", dashboard_runs["bare"],
        tags={**tags, "selected_by": "Dr. Chief", "reason": "clinical sign-off"},
    )  # fmt: skip
    client.set_registered_model_alias(settings.model_name, "champion", forged.version)
    choose_run(dashboard_runs["pipeline"], "back", settings, store)
    assert "Dr. Chief" not in [r["selected_by"] for r in store.recent(action="choose")]


def test_with_a_token_only_signed_choice_tags_are_recovered(dashboard_runs, settings, store):
    """Tags copied by hand and made to name the version's own run and a later time still lack
    the signature that only a holder of the deployment's token can make."""
    signed = settings.model_copy(update={"pipeline_api_token": "t" * 32})
    client = MlflowClient(settings.mlflow_tracking_uri)
    first = choose_run(dashboard_runs["pipeline"], "first", signed, store)
    tags = client.get_model_version(settings.model_name, first.version).tags
    assert tags["choice_signature"]
    forged = client.create_model_version(
        settings.model_name, f"runs:/{dashboard_runs['bare']}/model", dashboard_runs["bare"],
        tags={**tags, "run_id": dashboard_runs["bare"], "selected_by": "Dr. Chief",
              "selected_at": datetime.now(UTC).isoformat(timespec="milliseconds")},
    )  # fmt: skip
    client.set_registered_model_alias(settings.model_name, "champion", forged.version)
    choose_run(dashboard_runs["pipeline"], "back", signed, store)
    assert "Dr. Chief" not in [r["selected_by"] for r in store.recent(action="choose")]
    version = choose_run(dashboard_runs["bare"], "cut short", signed, None,
                         allow_unevaluated=True, selected_by="bo").version  # fmt: skip
    choose_run(dashboard_runs["pipeline"], "back again", signed, store)
    recovered = store.recent(action="choose")[1]  # a real choice, signed: recorded
    assert (recovered["version"], recovered["selected_by"]) == (version, "bo")


def _old_choice(client, settings, run_id: str) -> str:
    """A version chosen by a release before choices tagged their time (2026-12-06; 60bd8f7 is one),
    the alias moved and the choice ended before its record: the tags it wrote, no selected_at."""
    if not client.search_registered_models(f"name = '{settings.model_name}'"):
        client.create_registered_model(settings.model_name)
    version = client.create_model_version(
        settings.model_name, f"runs:/{run_id}/model", run_id,
        tags={"run_id": run_id, "selected_by": "dr.old", "reason": "before the upgrade",
              "evaluated": "false"},
    ).version  # fmt: skip
    client.set_registered_model_alias(settings.model_name, "champion", version)
    return version


def test_a_choice_interrupted_before_the_upgrade_is_recorded_at_its_registration(
    dashboard_runs, settings, store
):
    client = MlflowClient(settings.mlflow_tracking_uri)
    choose_run(dashboard_runs["pipeline"], "first", settings, store)
    old = _old_choice(client, settings, dashboard_runs["bare"])
    created = client.get_model_version(settings.model_name, old).creation_timestamp
    choose_run(dashboard_runs["pipeline"], "after the upgrade", settings, store)
    _, recovered, _ = store.recent(action="choose")
    assert (recovered["version"], recovered["selected_by"]) == (old, "dr.old")
    assert recovered["selected_at"].timestamp() == created / 1000
    assert recovered["recovered"].endswith("(a choice by a version before 2026-12-06 tagged none)")


def test_the_deploy_tab_names_the_chooser_of_an_interrupted_pre_upgrade_choice():
    recent = [{"action": "choose", "registered_model": "m", "alias": "champion",
               "version": "1", "run_id": "r1", "selected_at": "2026-12-04T10:00:00"}]  # fmt: skip
    registered = int(datetime(2026, 12, 4, 11, 0, tzinfo=UTC).timestamp() * 1000)
    tags = choice_tags({"selected_by": "dr.old", "run_id": "r2", "reason": "sharper"}, registered)
    warning = unrecorded_move(recent, ("2", "r2"), "m", "champion", tags, False, registered)
    assert "chosen by dr.old when it was registered, 2026-12-04T11:00:00.000+00:00" in warning
    # recorded before the upgrade (its record's time is seconds after the registration)
    recent.insert(0, {**recent[0], "version": "2", "run_id": "r2"})
    assert unrecorded_move(recent, ("2", "r2"), "m", "champion", tags, True, registered) is None


def test_a_choice_recorded_already_is_not_recorded_twice(dashboard_runs, settings, store):
    choose_run(dashboard_runs["pipeline"], "first", settings, store)
    choose_run(dashboard_runs["bare"], "second", settings, store, allow_unevaluated=True)
    assert len(store.recent(action="choose")) == 2


def test_a_pre_upgrade_choice_that_was_recorded_is_not_recorded_again(
    dashboard_runs, settings, store
):
    from common import utcnow
    from runs.schemas import SelectionRecord

    client = MlflowClient(settings.mlflow_tracking_uri)
    old = _old_choice(client, settings, dashboard_runs["bare"])
    store.record(
        SelectionRecord(
            run_id=dashboard_runs["bare"],
            action="choose",
            version=old,
            model_uri=f"models:/{settings.model_name}/{old}",
            experiment_id="1",
            registered_model=settings.model_name,
            alias="champion",
            selected_by="dr.old",
            selected_at=utcnow(),
        )
    )
    choose_run(dashboard_runs["pipeline"], "after the upgrade", settings, store)
    assert [r["selected_by"] for r in store.recent(action="choose")][1:] == ["dr.old"]


def test_a_choice_whose_store_cannot_be_read_stops_before_its_alias_moves(
    dashboard_runs, settings, store
):
    choose_run(dashboard_runs["pipeline"], "first", settings, store)
    [file] = settings.store_dir.glob("*.sqlite3")
    file.unlink()  # its volume gone: the store fails from here on
    with pytest.raises(ServiceUnavailable, match="nothing was chosen"):
        choose_run(dashboard_runs["bare"], "second", settings, store, allow_unevaluated=True)
    client = MlflowClient(settings.mlflow_tracking_uri)
    assert client.get_model_version_by_alias(settings.model_name, "champion").version == "1"


def test_the_deploy_tab_names_who_made_an_unrecorded_choice_by_the_versions_tags():
    recent = [{"action": "choose", "registered_model": "m", "alias": "champion",
               "version": "1", "run_id": "r1", "selected_at": "2026-12-06"}]  # fmt: skip
    tags = {"selected_by": "bo", "selected_at": "2026-12-06T06:00:00.000+00:00",
            "run_id": "r2", "reason": "sharper"}  # fmt: skip
    warning = unrecorded_move(recent, ("2", "r2"), "m", "champion", tags)
    assert warning.startswith("The alias 'champion' names version 2 (run r2), chosen by bo at ")
    assert "ended before it was recorded here (interrupted)" in warning
    assert "outside the dashboard" in unrecorded_move(recent, ("2", "r2"), "m", "champion", {})
    copied = {**tags, "run_id": "r1"}  # another version's tags on version 2: no choice of it
    assert "outside the dashboard" in unrecorded_move(recent, ("2", "r2"), "m", "champion", copied)
    future = {**tags, "selected_at": "2099-01-01T00:00:00.000+00:00"}
    assert "outside the dashboard" in unrecorded_move(recent, ("2", "r2"), "m", "champion", future)
    registered = datetime(2026, 12, 6, 6, 0, tzinfo=UTC).timestamp() * 1000
    for seconds, said in ((60, "chosen by bo"), (7200, "outside the dashboard")):  # tags' age
        late = int(registered + seconds * 1000)
        assert said in unrecorded_move(recent, ("2", "r2"), "m", "champion", tags, False, late)


def test_an_alias_moved_back_by_hand_to_a_recorded_choice_is_not_called_interrupted():
    recent = [{"action": "choose", "registered_model": "m", "alias": "champion",
               "version": "5", "run_id": "r5", "selected_at": "2026-12-06"}]  # fmt: skip
    tags = {"selected_by": "ana", "selected_at": "2026-12-05T06:00:00.000+00:00",
            "run_id": "r3", "reason": "first"}  # fmt: skip
    warning = unrecorded_move(recent, ("3", "r3"), "m", "champion", tags, recorded=True)
    assert "the alias was moved outside the dashboard" in warning and "ana" not in warning


def test_version_tags_edited_after_the_choice_disagree_with_its_record():
    record = {"version": "3", "run_id": "r1", "selected_by": "ana", "reason": "best AUC"}
    tags = {"run_id": "r1", "selected_by": "ana", "reason": "best AUC"}
    assert edited_choice(record, tags, None) is None
    said = edited_choice(record, {**tags, "reason": "TAMPERED"}, None)
    assert said.startswith("The tags of version 3 were changed in MLflow since it was chosen")
    assert "(reason no longer as recorded)" in said


def test_with_a_token_a_signed_tag_edited_consistently_with_the_record_is_seen():
    """The record and the tags agree on who and why, but the signed time was moved."""
    key = "t" * 32
    tags = {"run_id": "r1", "selected_by": "ana", "reason": "why", "selected_at": "2026-12-06"}
    tags["choice_signature"] = sign_choice(tags, key)
    record = {"version": "1", "run_id": "r1", "selected_by": "ana", "reason": "why"}
    assert edited_choice(record, tags, key) is None
    moved = {**tags, "selected_at": "2026-12-07"}
    assert "(choice_signature no longer as recorded)" in edited_choice(record, moved, key)
    assert edited_choice(record, {**tags, "choice_signature": ""}, key) is None  # unsigned: before


def test_with_public_keys_an_ed25519_signed_tag_edited_consistently_with_the_record_is_seen():
    """A deployment signing with Ed25519 only (no token): the signed time moved in MLflow."""
    private, public = new_key_pair()
    tags = {"run_id": "r1", "selected_by": "ana", "reason": "why", "selected_at": "2026-12-06"}
    tags[ED25519_TAG] = sign_choice_ed25519(tags, private)
    record = {"version": "1", "run_id": "r1", "selected_by": "ana", "reason": "why"}
    assert edited_choice(record, tags, None, [public]) is None
    moved = {**tags, "selected_at": "2026-12-07"}
    assert edited_choice(record, moved, None) is None  # without the keys nothing can tell
    said = edited_choice(record, moved, None, [public])
    assert f"({ED25519_TAG} no longer as recorded)" in said
    assert said.endswith("keep a rotated key in PIPELINE_CHOICE_PREVIOUS_PUBLIC_KEYS).")
    assert edited_choice(record, {**tags, ED25519_TAG: ""}, None, [public]) is None  # unsigned


def test_the_keys_a_choice_is_checked_against_include_the_signing_private_keys():
    private, public = new_key_pair()
    _, former = new_key_pair()
    settings = Settings(_env_file=None, pipeline_choice_private_key=SecretStr(private),
                        pipeline_choice_previous_public_keys=former)  # fmt: skip
    assert set(public_keys_of(settings)) == {public, former}
    assert public_keys_of(Settings(_env_file=None)) == []


@pytest.mark.parametrize("signature", ["choice_signature", ED25519_TAG])
def test_a_signature_the_choice_set_removed_from_the_tags_is_seen(signature):
    """Without it the tags would pass as a choice made before signing, and could be edited."""
    tags = {"run_id": "r1", "selected_by": "ana", "reason": "why", signature: "a-signature"}
    record = {"version": "1", "run_id": "r1", "selected_by": "ana", "reason": "why",
              "signatures": [signature]}  # fmt: skip
    stripped = {**tags, signature: ""}
    assert f"({signature} no longer as recorded)" in edited_choice(record, stripped, None)
    older = {k: v for k, v in record.items() if k != "signatures"}  # a record from before
    assert edited_choice(older, stripped, None) is None


def test_a_choice_records_the_signatures_it_set(dashboard_runs, settings, store):
    private, _ = new_key_pair()
    keys = {"pipeline_api_token": "t" * 32, "pipeline_choice_private_key": SecretStr(private)}
    keyed = settings.model_copy(update=keys)
    choose_run(dashboard_runs["pipeline"], "signed", keyed, store, selected_by="ana")
    assert store.recent()[0]["signatures"] == ["choice_signature", ED25519_TAG]
    choose_run(dashboard_runs["bare"], "unsigned", settings, store, allow_unevaluated=True)
    assert store.recent()[0]["signatures"] == []
