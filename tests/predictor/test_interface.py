"""Clients of the predictor do not receive other classes, channels or decisions, nor refusals
of DICOM modalities that were served, unasked: a
version of another interface is served once its chooser confirmed it
(``dashboard.choose --yes-interface-change``), and the choice compares with what the predictor
serves, not only with what the alias names."""

import logging
import time

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard.choose import choose_run
from tests.predictor.conftest import (
    alias_a_foreign_model,
    move_alias_by_hand,
    post_images,
    serve_three_classes,
    wait_ready,
)
from tests.predictor.test_stale import wait_for


def test_an_unconfirmed_version_of_other_classes_is_not_served_until_chosen_as_such(
    predictor, settings, served_runs, other_classes_run, demo_data
):
    serve_three_classes(predictor, settings, served_runs)
    moved = move_alias_by_hand(settings, other_classes_run)
    ready = wait_for(predictor, stale=True)
    assert ready["version"] == "1"  # clients keep their three classes
    assert (
        f"names version {moved}, which changes what clients of version 1 receive (classes "
        in (ready["problem"])
    )
    assert (
        f"dashboard.choose {other_classes_run} --reason TEXT --yes-interface-change"
        in (ready["problem"])
    )
    image = sorted((demo_data / "test").rglob("*.png"))[0]
    body = post_images(predictor, [image]).json()
    assert (body["version"], len(body["predictions"][0]["probabilities"])) == ("1", 3)

    # The chooser confirms: the version the alias already names is tagged, and served.
    choose_run(other_classes_run, "two classes now", settings, allow_unevaluated=True,
               allow_interface_change=True)  # fmt: skip
    ready = wait_ready(predictor, moved)
    assert (ready["stale"], ready["problem"]) == (False, None)


def test_a_refused_version_is_logged_once_and_never_as_served(
    predictor, settings, served_runs, other_classes_run, caplog
):
    with caplog.at_level(logging.INFO, logger="predictor"):
        serve_three_classes(predictor, settings, served_runs)
        moved = move_alias_by_hand(settings, other_classes_run)
        wait_for(predictor, stale=True)
        time.sleep(8 * settings.predictor_poll_s)  # eight more polls find it refused again
    name = settings.model_name
    serving = [m for m in caplog.messages if m.startswith(f"serving {name} ")]
    assert any(m.startswith(f"serving {name} version 1 (run") for m in serving), serving
    assert not any(m.startswith(f"serving {name} version {moved}") for m in serving), serving
    # the refusal is logged, as served by version 1, once: not at every poll
    refusals = [m for m in serving if f"names version {moved}, which changes what clients" in m]
    assert len(refusals) == 1, refusals


def test_a_refused_version_is_served_once_it_no_longer_changes_what_is_served(
    predictor, settings, served_runs, other_classes_runs
):
    serve_three_classes(predictor, settings, served_runs)
    refused = move_alias_by_hand(settings, other_classes_runs[0])  # two classes: refused
    wait_for(predictor, stale=True)
    at_predictor = settings.model_copy(update={"predictor_url": predictor})
    confirmed = choose_run(other_classes_runs[1], "two classes", at_predictor,
                           allow_unevaluated=True, allow_interface_change=True)  # fmt: skip
    wait_ready(predictor, confirmed.version)  # now two classes are served
    MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(
        settings.model_name, settings.model_alias, refused
    )  # back to the version refused before: the same two classes as served now
    ready = wait_ready(predictor, refused)
    assert (ready["stale"], ready["problem"]) == (False, None)


def test_choosing_compares_with_the_version_the_predictor_serves(
    predictor, settings, served_runs, other_classes_run
):
    serve_three_classes(predictor, settings, served_runs)
    MlflowClient(settings.mlflow_tracking_uri).delete_registered_model_alias(
        settings.model_name, settings.model_alias
    )  # the predictor keeps serving version 1
    wait_for(predictor, stale=True)
    at_predictor = settings.model_copy(update={"predictor_url": predictor})
    with pytest.raises(InvalidInput, match=rf"the predictor at {predictor} serves version 1 .*"
                       "changes what its clients receive: classes"):  # fmt: skip
        choose_run(other_classes_run, "two classes", at_predictor, allow_unevaluated=True)


def test_a_choice_under_another_alias_is_not_compared_with_this_predictor(
    predictor, settings, served_runs, other_classes_run
):
    """A staging choice beside a champion's predictor: what it serves is not staging's."""
    serve_three_classes(predictor, settings, served_runs)
    staging = settings.model_copy(update={"predictor_url": predictor, "model_alias": "staging"})
    chosen = choose_run(other_classes_run, "two classes", staging, allow_unevaluated=True)
    assert chosen.version == "2"  # nothing served under staging: no interface to keep


def test_a_foreign_model_under_the_alias_is_unknown_not_a_list_of_changes(
    settings, served_runs, tmp_path
):
    alias_a_foreign_model(settings)
    with pytest.raises(InvalidInput, match=r"cannot be read .*is not a model of this pipeline"):
        choose_run(served_runs[0], "ours", settings, allow_unevaluated=True)


def test_a_version_refusing_a_served_dicom_modality_is_not_served_until_chosen_as_such(
    predictor, settings, modality_runs
):
    choose_run(modality_runs["DMS"], "dermoscopy", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    moved = move_alias_by_hand(settings, modality_runs["XC"])
    ready = wait_for(predictor, stale=True)
    assert ready["version"] == "1"  # clients sending dermoscopy files keep their answers
    assert "(DICOM modalities DMS → XC: DMS files are refused)" in ready["problem"]
    choose_run(modality_runs["XC"], "photographs now", settings, allow_unevaluated=True,
               allow_interface_change=True)  # fmt: skip
    ready = wait_ready(predictor, moved)
    assert (ready["stale"], ready["problem"]) == (False, None)


def test_a_version_taking_more_dicom_modalities_is_served_without_a_confirmation(
    predictor, settings, modality_runs
):
    choose_run(modality_runs["DMS"], "dermoscopy", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    moved = move_alias_by_hand(settings, modality_runs["DMS+XC"])
    ready = wait_ready(predictor, moved)
    assert (ready["stale"], ready["problem"]) == (False, None)


def test_choosing_a_version_refusing_a_served_dicom_modality_needs_the_confirmation(
    settings, modality_runs
):
    choose_run(modality_runs["DMS+XC"], "both", settings, allow_unevaluated=True)
    with pytest.raises(InvalidInput, match=r"DICOM modalities DMS, XC → DMS: XC files are "
                       r"refused\. Clients .* send images it refuses"):  # fmt: skip
        choose_run(modality_runs["DMS"], "dermoscopy only", settings, allow_unevaluated=True)


def test_a_version_refusing_the_served_multi_frame_files_is_an_interface_change(
    predictor, settings, modality_runs
):
    choose_run(modality_runs["DMS frames"], "cine loops", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    change = r"multi-frame DICOM files \(a cine loop's first frame classified\) → refused"
    with pytest.raises(InvalidInput, match=change):  # the choice sees it
        choose_run(modality_runs["DMS"], "single frames", settings, allow_unevaluated=True)
    move_alias_by_hand(settings, modality_runs["DMS"])
    ready = wait_for(predictor, stale=True)  # and so does the predictor
    assert ready["version"] == "1" and "multi-frame DICOM files" in ready["problem"]
