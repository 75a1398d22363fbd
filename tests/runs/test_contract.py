"""The sentences the contract words from a run's files (``runs.contract``)."""

from runs import contract


def test_near_label_conflicts_not_looked_for_are_said_to_be_unchecked():
    skipped = "not looked for: 40000 images, more than 30000 (all pairs are compared)"
    near = {"count": None, "examples": [], "skipped": skipped}
    leakage = {"label_conflicts": {"count": 0, "examples": []}, "near_label_conflicts": near}
    note = contract.label_conflict_note(leakage)
    assert note.startswith("near-identical images under two classes were not looked for: 40000")


def test_no_label_conflicts_looked_for_and_found_is_no_note():
    leakage = {"label_conflicts": {"count": 0, "examples": []},
               "near_label_conflicts": {"count": 0, "examples": []}}  # fmt: skip
    assert contract.label_conflict_note(leakage) is None
