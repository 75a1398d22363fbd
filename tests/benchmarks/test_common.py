"""Result ratios, goal checks and the table."""

import pytest

from benchmarks.common import Result, format_table, interleaved_best


def test_ratio_of_times_is_reference_over_ours():
    assert Result("t", ours=0.5, reference=2.0, unit="s", goal="").ratio == 4.0


def test_ratio_of_rates_is_ours_over_reference():
    r = Result("r", ours=300.0, reference=100.0, unit="images/s", goal="", higher_is_better=True)
    assert r.ratio == 3.0


@pytest.mark.parametrize(
    ("goal", "met"),
    [("≥ 5× faster (ratio ≥ 5)", False), ("ratio >= 3", True), ("ratio > 4", False),
     ("ours ≤ 50 ms", None)],
)  # fmt: skip
def test_goal_met_reads_the_ratio_bound(goal, met):
    assert Result("g", ours=1.0, reference=4.0, unit="s", goal=goal).goal_met is met


def test_table_has_a_row_per_result_with_its_ratio():
    table = format_table([
        Result("alpha", 1.0, 3.0, "s", "ratio ≥ 2", note="n1"),
        Result("beta", 2.0, 1.0, "ms", "report"),
    ])  # fmt: skip
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["benchmark", "ours", "reference", "unit", "ratio"]
    assert len(lines) == 4
    assert "3.00×" in lines[2] and "yes" in lines[2] and lines[2].endswith("n1")
    assert "0.50×" in lines[3]


def test_interleaved_best_runs_both_alternately():
    calls = []
    interleaved_best(lambda: calls.append("a"), lambda: calls.append("b"), repeat=3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
