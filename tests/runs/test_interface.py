"""What a client of a served model depends on, and when a change of it counts as confirmed."""

import json

from runs import (
    CONFIRMED_FROM_TAG,
    Interface,
    ServedRecord,
    compare_interfaces,
    confirmation,
    confirmed_for,
    read_served,
    restamped,
    served_record,
    served_tag,
)

THREE = Interface.of(["a", "b", "c"], 3, (32, 32), None)
TWO = Interface.of(["a", "b"], 3, (32, 32), "a")


def test_the_changes_name_classes_and_decision_rule():
    found = compare_interfaces(THREE, TWO)
    assert found == ["classes a, b, c → a, b",
                     "decision no threshold (no `decision`) → threshold for 'a'"]  # fmt: skip
    assert compare_interfaces(TWO, TWO) == []


def test_another_input_shape_is_a_change_a_smaller_one_of_the_same_shape_is_not():
    wide = Interface.of(["a", "b"], 3, (16, 32), "a")
    assert compare_interfaces(TWO, wide) == [
        "input shape 32×32 → 16×32 px: images more than 4× out of the new shape are refused"
    ]  # a 1:4 strip was served, an 8× distortion of the new shape now
    assert compare_interfaces(TWO, Interface.of(["a", "b"], 3, (16, 16), "a")) == []


def test_a_change_confirmed_from_one_interface_is_not_confirmed_from_another():
    tags = confirmation([THREE], "")
    assert confirmed_for(tags, THREE)
    assert not confirmed_for(tags, TWO)  # a later move of the alias back to it: not confirmed


def test_a_change_confirmed_while_nothing_could_be_seen_counts_from_any():
    assert confirmation([], "") == {CONFIRMED_FROM_TAG: "any"}
    assert confirmed_for({CONFIRMED_FROM_TAG: "any"}, TWO)


def test_a_version_without_the_tag_or_with_a_damaged_one_is_not_confirmed():
    assert not confirmed_for({}, THREE)
    assert not confirmed_for({CONFIRMED_FROM_TAG: '[{"classes": 1}]'}, THREE)
    assert not confirmed_for({CONFIRMED_FROM_TAG: "not json"}, THREE)


def test_the_record_of_what_is_served_reads_back_per_alias():
    tags = {served_tag("champion"): served_record("4", "run-a", TWO)}
    assert read_served(tags, "champion") == ServedRecord("4", "run-a", TWO)
    assert read_served(tags, "challenger") is None


def test_a_record_edited_into_something_else_is_no_record():
    for value in ("not json", "[]", '{"version": "4"}', '{"version": "4", "interface": 1}'):
        assert read_served({served_tag("champion"): value}, "champion") is None


def us(*codes: str, frames: bool | None = False) -> Interface:
    """TWO, taking DICOM files of ``codes`` (none: every modality), multi-frame ones if
    ``frames``."""
    return Interface.of(["a", "b"], 3, (32, 32), "a", codes, frames)


def test_a_model_taking_fewer_dicom_modalities_is_a_change():
    assert compare_interfaces(us("CT", "MR"), us("CT")) == [
        "DICOM modalities CT, MR → CT: MR files are refused"
    ]
    assert compare_interfaces(us(), us("US")) == [
        "DICOM modalities any → US: files of other modalities are refused"
    ]


def test_a_model_taking_more_dicom_modalities_or_unknown_ones_is_no_change():
    assert compare_interfaces(us("CT"), us("CT", "MR")) == []
    assert compare_interfaces(us("CT"), us()) == []  # every modality
    unknown = Interface.of(["a", "b"], 3, (32, 32), "a")  # a record of an earlier version
    assert compare_interfaces(unknown, us("CT")) == []


def test_a_model_refusing_the_multi_frame_files_the_served_one_took_is_a_change():
    assert compare_interfaces(us("US", frames=True), us("US")) == [
        "multi-frame DICOM files (a cine loop's first frame classified) → refused"
    ]
    assert compare_interfaces(us("US"), us("US", frames=True)) == []
    assert compare_interfaces(us("US", frames=None), us("US")) == []  # not known


def test_a_change_confirmed_from_some_dicom_inputs_is_not_confirmed_from_others():
    tags = confirmation([us("CT")], "")
    assert confirmed_for(tags, us("CT"))
    assert not confirmed_for(tags, us("MR"))
    assert not confirmed_for(tags, us("CT", frames=True))
    assert confirmed_for(tags, TWO)  # DICOM inputs not known: the interface decides


def test_a_confirmation_of_an_earlier_version_holds_whatever_the_dicom_inputs():
    earlier = {CONFIRMED_FROM_TAG: confirmation([us("CT")], "")[CONFIRMED_FROM_TAG]}
    assert confirmed_for(earlier, us("MR", frames=True))
    assert not confirmed_for(earlier, THREE)


def test_dicom_inputs_beside_another_choices_confirmation_are_not_known():
    """An earlier version's dashboard rewrites ``interface_confirmed_from`` (and the choice's
    ``selected_at``) alone: the DICOM inputs left beside it are the choice before's."""
    tags = {
        "selected_at": "2026-12-06T06:00:00.000",
        **confirmation([us("CT")], "2026-12-06T06:00:00.000"),
    }
    assert not confirmed_for(tags, us("MR"))
    tags["selected_at"] = "2026-12-07T09:00:00.000"  # chosen again, from MR, by the earlier one
    assert confirmed_for(tags, us("MR"))


def test_the_records_keep_the_fields_an_earlier_version_reads():
    """A predictor of the previous version builds ``Interface(**fields)`` of each entry: a
    DICOM field inside would make it read no record and no confirmation."""
    fields = {"classes", "channels", "image_size", "decision"}
    record = json.loads(served_record("4", "run-a", us("CT")))
    assert set(record["interface"]) == fields
    assert record["dicom"] == {"modalities": ["CT"], "multi_frame": False, "ood_check": None}
    [entry] = json.loads(confirmation([us("CT")], "")[CONFIRMED_FROM_TAG])
    assert set(entry) == fields


def test_the_record_of_what_is_served_keeps_its_dicom_inputs():
    tags = {served_tag("champion"): served_record("4", "run-a", us("CT", "MR", frames=True))}
    served = read_served(tags, "champion").interface
    assert (served.modalities, served.multi_frame) == (("CT", "MR"), True)
    earlier = json.loads(tags[served_tag("champion")])
    del earlier["dicom"]  # written before the DICOM inputs were
    served = read_served({served_tag("champion"): json.dumps(earlier)}, "champion").interface
    assert (served.modalities, served.multi_frame) == (None, None)


def test_a_confirmation_goes_on_counting_when_its_run_is_chosen_again():
    """Chosen again with no change seen, a version keeps its ``interface_*`` tags and gets a new
    ``selected_at``: its DICOM inputs are stamped for the new choice, not dropped to unknown."""
    first, again = "2026-12-06T06:00:00.000", "2026-12-06T07:00:00.000"
    tags = {"selected_at": first, **confirmation([us("CT")], first)}
    tags = {**tags, "selected_at": again, **restamped(tags, again)}
    assert not confirmed_for(tags, us("MR"))  # still a confirmation from CT only
    assert confirmed_for(tags, us("CT"))
