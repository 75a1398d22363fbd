"""What a client of a served model depends on, and when a change of it counts as confirmed."""

from runs import (
    CONFIRMED_FROM_TAG,
    Interface,
    ServedRecord,
    compare_interfaces,
    confirmation,
    confirmed_for,
    read_served,
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
    tags = {CONFIRMED_FROM_TAG: confirmation([THREE])}
    assert confirmed_for(tags, THREE)
    assert not confirmed_for(tags, TWO)  # a later move of the alias back to it: not confirmed


def test_a_change_confirmed_while_nothing_could_be_seen_counts_from_any():
    assert confirmation([]) == "any" and confirmed_for({CONFIRMED_FROM_TAG: "any"}, TWO)


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
