"""Losing the out-of-distribution check is an interface change; the records of it read as the
ones written before it was recorded."""

import json

from runs import (
    CONFIRMED_DICOM_TAG,
    CONFIRMED_FROM_TAG,
    Interface,
    compare_interfaces,
    confirmation,
    confirmed_for,
    read_served,
    served_record,
    served_tag,
)

LOST = (
    "out-of-distribution check → none: `out_of_distribution` and `ood_score` are null for every "
    "image, so no image unlike the training images is flagged for review by a person"
)


def model(ood: bool | None) -> Interface:
    """The same classes, input and decision, with the check (True), without (False) or not
    known (None)."""
    return Interface.of(["a", "b"], 3, (32, 32), "a", ["CT"], False, ood)


def test_a_model_without_the_check_after_one_with_it_is_a_change():
    assert compare_interfaces(model(True), model(False)) == [LOST]


def test_gaining_keeping_or_not_knowing_the_check_is_no_change():
    assert compare_interfaces(model(False), model(True)) == []  # new values, no field lost
    assert compare_interfaces(model(True), model(True)) == []
    assert compare_interfaces(model(False), model(False)) == []
    assert compare_interfaces(model(None), model(False)) == []  # a record written before
    assert compare_interfaces(model(True), model(None)) == []


def test_the_record_of_what_is_served_keeps_whether_it_has_the_check():
    tags = {served_tag("champion"): served_record("4", "run-a", model(True))}
    assert read_served(tags, "champion").interface.ood_check is True
    tags = {served_tag("champion"): served_record("4", "run-a", model(False))}
    assert read_served(tags, "champion").interface.ood_check is False


def test_a_record_written_before_the_check_was_recorded_reads_as_not_known():
    record = json.loads(served_record("4", "run-a", model(True)))
    del record["dicom"]["ood_check"]  # the DICOM inputs alone, as the previous version wrote
    served = read_served({served_tag("champion"): json.dumps(record)}, "champion").interface
    assert (served.modalities, served.ood_check) == (("CT",), None)


def test_a_confirmation_from_a_model_with_the_check_is_not_one_from_a_model_without():
    tags = confirmation([model(True)], "")
    assert confirmed_for(tags, model(True))
    assert not confirmed_for(tags, model(False))


def test_a_confirmation_written_before_the_check_was_recorded_holds_either_way():
    tags = confirmation([model(True)], "")
    inputs = json.loads(tags[CONFIRMED_DICOM_TAG])
    del inputs["inputs"][0]["ood_check"]  # as the previous version wrote it
    earlier = {CONFIRMED_FROM_TAG: tags[CONFIRMED_FROM_TAG],
               CONFIRMED_DICOM_TAG: json.dumps(inputs)}  # fmt: skip
    assert confirmed_for(earlier, model(True)) and confirmed_for(earlier, model(False))
    assert not confirmed_for(earlier, Interface.of(["a", "b"], 3, (32, 32), "a", ["MR"], False))
