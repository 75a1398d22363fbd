"""Paired sensitivity and specificity of two runs' served decisions: known counts give the
published interval and p-value, and the decisions are read as the evaluator wrote them."""

import numpy as np
import pandas as pd
import pytest

from dashboard.paired_decision import (
    PairedRate,
    mcnemar_p,
    paired_interval,
    served_rates,
    why_not_served,
)
from runs.schemas import ThresholdPoint

# Cavo et al. (2012), complete response before and after consolidation therapy: 59 both, 6 before
# only, 16 after only, 80 neither (Fagerland, Lydersen and Laake, "Statistical Analysis of
# Contingency Tables", chapter 8): after − before 0.0621, Newcombe square-and-add 95 % interval
# 0.0046 to 0.1186, exact conditional McNemar P = 0.052479.
CAVO = (59, 6, 16, 80)


def test_the_newcombe_interval_and_the_exact_mcnemar_test_of_published_counts():
    low, high = paired_interval(*CAVO)
    assert (round(low, 4), round(high, 4)) == (0.0046, 0.1186)
    assert mcnemar_p(6, 16) == pytest.approx(0.052479, abs=1e-6)
    # the other way round: the same interval, negated; the same test
    assert paired_interval(59, 16, 6, 80) == pytest.approx((-high, -low))
    assert mcnemar_p(16, 6) == pytest.approx(0.052479, abs=1e-6)


def test_intervals_stay_within_minus_one_and_one_and_no_discordance_tests_nothing():
    # 4 positives, all found by one decision and none by the other: p = 2 / 2**4
    low, high = paired_interval(0, 4, 0, 0)
    assert low == -1.0 and round(high, 3) == -0.307
    assert mcnemar_p(4, 0) == pytest.approx(0.125)
    assert mcnemar_p(0, 0) == 1.0
    low, high = paired_interval(5, 0, 0, 0)
    assert low < 0 < high and low == pytest.approx(-high)
    with pytest.raises(ValueError):
        paired_interval(0, 0, 0, 0)


def test_an_interval_that_excludes_zero_does_not_overrule_the_exact_test():
    rate = PairedRate("sensitivity", images=161, both=59, only_this=6, only_other=16)
    assert rate.value == pytest.approx(10 / 161)
    assert (rate.this_rate, rate.other_rate) == (pytest.approx(65 / 161), pytest.approx(75 / 161))
    assert rate.interval[0] > 0  # the interval alone would call `after` more sensitive
    assert rate.better() is None
    assert rate.verdict("before", "after") == (
        "no clear difference on these images (6 right only by before, 16 only by after; "
        "exact McNemar p = 0.052)"
    )


def test_a_clear_difference_names_the_more_sensitive_or_specific_decision():
    sensitivity = PairedRate("sensitivity", images=40, both=25, only_this=0, only_other=10)
    assert sensitivity.p_value == pytest.approx(2 / 2**10)
    assert sensitivity.better() == 1
    assert sensitivity.verdict("a", "b").startswith("b is more sensitive (0 right only by a")
    specificity = PairedRate("specificity", images=40, both=25, only_this=10, only_other=0)
    assert specificity.verdict("a", "b").startswith("a is more specific (10 right only by a")


def test_a_measure_without_images_is_undefined():
    rate = PairedRate("sensitivity", images=0, both=0, only_this=0, only_other=0)
    assert rate.value is None and rate.interval is None and rate.better() is None
    assert rate.verdict("a", "b") == "undefined: no test image with the finding"


def _point(positive: str, threshold: float) -> ThresholdPoint:
    return ThresholdPoint(positive_class=positive, threshold=threshold)


def _table(truth: list[str], p_malignant: list[float], decision: list[str] | None = None):
    """A two-class ``predictions.csv`` as the evaluator writes it (``decision``: where given)."""
    files = [f"test/{i}.png" for i in range(len(truth))]
    frame = pd.DataFrame({"index": range(len(truth)), "file": files, "true_label": truth})
    if decision is not None:
        frame["decision"] = decision
    frame["prob_benign"] = 1 - np.array(p_malignant)
    frame["prob_malignant"] = p_malignant
    return frame


def test_each_run_is_decided_at_its_own_threshold():
    truth = ["malignant"] * 4 + ["benign"] * 4
    probs = [0.9, 0.6, 0.4, 0.2, 0.7, 0.5, 0.3, 0.1]
    # the same probabilities: this run decides at 0.5 (a probability at the threshold is
    # positive, as the served model decides), the other at 0.3
    this, other = _table(truth, probs), _table(truth, probs)
    sensitivity, specificity = served_rates(
        this, other, (_point("malignant", 0.5), _point("malignant", 0.3))
    )
    assert (sensitivity.images, sensitivity.both, sensitivity.only_this) == (4, 2, 0)
    assert sensitivity.only_other == 1  # 0.4: found at 0.3 only
    # 0.3: cleared at 0.5 only; 0.5 reaches 0.5 and is decided malignant by both
    assert (specificity.images, specificity.both, specificity.only_this) == (4, 1, 1)
    assert specificity.only_other == 0


def test_the_decision_the_evaluator_wrote_is_the_one_paired():
    truth = ["malignant", "malignant", "benign", "benign"]
    # the probabilities say otherwise: the `decision` column is what the served model decided
    this = _table(truth, [0.1, 0.1, 0.1, 0.1], ["malignant", "benign", "benign", "benign"])
    other = _table(truth, [0.1, 0.1, 0.1, 0.1], ["malignant", "malignant", "malignant", "benign"])
    sensitivity, specificity = served_rates(
        this, other, (_point("malignant", 0.5), _point("malignant", 0.5))
    )
    assert (sensitivity.both, sensitivity.only_this, sensitivity.only_other) == (1, 0, 1)
    assert (specificity.both, specificity.only_this, specificity.only_other) == (1, 1, 0)


def test_why_the_served_decisions_are_not_paired():
    names = ("a (111111)", "b (222222)")
    points = (_point("malignant", 0.3), _point("malignant", 0.6))
    assert why_not_served(names, points, (True, True)) is None
    other_positive = (points[0], _point("benign", 0.5))
    assert why_not_served(names, other_positive, (True, True)) == (
        "a (111111) takes 'malignant' as its positive class and b (222222) 'benign': their "
        "sensitivities are of different classes"
    )
    assert why_not_served(names, (points[0], None), (True, False)).startswith(
        "b (222222) has no decision threshold (its trainer chose none"
    )
    assert why_not_served(names, (None, points[1]), (True, True)).startswith(
        "the evaluation of a (111111) applied no decision threshold, though its trainer chose one"
    )
