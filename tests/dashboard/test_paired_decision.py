"""Paired sensitivity and specificity of two runs' served decisions: known counts give the
published interval and p-value, and the decisions are read as the evaluator wrote them."""

from math import comb

import numpy as np
import pandas as pd
import pytest

from dashboard.paired import mcnemar_mid_p
from dashboard.paired_decision import PairedRate, paired_interval, served_rates, why_not_served
from runs.schemas import ThresholdPoint

# Cavo et al. (2012), complete response before and after consolidation therapy: 59 both, 6 before
# only, 16 after only, 80 neither (Fagerland, Lydersen and Laake, "Statistical Analysis of
# Contingency Tables", chapter 8): after − before 0.0621, Newcombe square-and-add 95 % interval
# 0.0046 to 0.1186, exact conditional McNemar P = 0.052479; the mid-p test takes the probability
# of the count observed (6 of 22) off it.
CAVO = (59, 6, 16, 80)
CAVO_MID_P = 0.052479 - comb(22, 6) / 2**22  # 0.034690


def _pmf(k: int, n: int) -> float:
    """P(X = k), X ~ Binomial(n, 1/2): the reference the tests compute by hand."""
    return comb(n, k) / 2**n


def test_the_newcombe_interval_and_the_mcnemar_mid_p_test_of_published_counts():
    low, high = paired_interval(*CAVO)
    assert (round(low, 4), round(high, 4)) == (0.0046, 0.1186)
    assert round(CAVO_MID_P, 6) == 0.034690
    assert mcnemar_mid_p(6, 16) == pytest.approx(CAVO_MID_P, abs=1e-6)
    # the other way round: the same interval, negated; the same test
    assert paired_interval(59, 16, 6, 80) == pytest.approx((-high, -low))
    assert mcnemar_mid_p(16, 6) == pytest.approx(CAVO_MID_P, abs=1e-6)


def test_the_mid_p_is_the_exact_p_less_the_probability_of_the_count_observed():
    # 0 against 5: exact 2·P(X ≤ 0) = 0.0625, mid-p 0.0625 − P(X = 0) = 0.03125
    assert 2 * _pmf(0, 5) - _pmf(0, 5) == 0.03125
    assert mcnemar_mid_p(0, 5) == pytest.approx(0.03125)
    # Bentur et al. (Fagerland et al. 2013, table 1): 1 against 7, exact 0.0703, mid-p 0.0391
    exact = 2 * (_pmf(0, 8) + _pmf(1, 8))
    assert round(exact, 4) == 0.0703 and round(exact - _pmf(1, 8), 4) == 0.0391
    assert mcnemar_mid_p(1, 7) == pytest.approx(exact - _pmf(1, 8))
    # 9 against 2 of 11: the reviewer's served example, under 0.05 where the exact test is not
    exact = 2 * sum(_pmf(k, 11) for k in range(3))
    assert exact > 0.05 > exact - _pmf(2, 11)
    assert mcnemar_mid_p(9, 2) == pytest.approx(exact - _pmf(2, 11))
    # equal counts: 1 − ½·P(X = k) (their supplement); none at all: nothing tested
    assert mcnemar_mid_p(3, 3) == pytest.approx(1 - _pmf(3, 6) / 2)
    assert mcnemar_mid_p(0, 0) == 1.0


def test_intervals_stay_within_minus_one_and_one_and_no_discordance_tests_nothing():
    # 4 positives, all found by one decision and none by the other: mid-p = 2 / 2**4 − 1 / 2**4
    low, high = paired_interval(0, 4, 0, 0)
    assert low == -1.0 and round(high, 3) == -0.307
    assert mcnemar_mid_p(4, 0) == pytest.approx(0.0625)
    low, high = paired_interval(5, 0, 0, 0)
    assert low < 0 < high and low == pytest.approx(-high)
    with pytest.raises(ValueError):
        paired_interval(0, 0, 0, 0)


def test_the_mid_p_test_and_the_interval_agree_on_published_counts():
    rate = PairedRate("sensitivity", images=161, both=59, only_this=6, only_other=16)
    assert rate.value == pytest.approx(10 / 161)
    assert (rate.this_rate, rate.other_rate) == (pytest.approx(65 / 161), pytest.approx(75 / 161))
    assert rate.interval[0] > 0 and rate.p_value == pytest.approx(CAVO_MID_P, abs=1e-6)
    assert rate.better() == 1
    assert rate.verdict("before", "after") == (
        "after is more sensitive (6 right only by before, 16 only by after; McNemar mid-p = 0.0347)"
    )


@pytest.mark.parametrize(
    "both, only_this, only_other, images",
    [(15, 0, 5, 60), (0, 2, 9, 200)],  # the reviewer's: exact p 0.0625 and 0.065
)
def test_an_interval_that_excludes_zero_now_agrees_with_the_verdict(
    both, only_this, only_other, images
):
    rate = PairedRate("sensitivity", images, both, only_this, only_other)
    assert rate.interval[0] > 0
    assert rate.verdict("a", "b").startswith("b is more sensitive")
    assert "interval" not in rate.verdict("a", "b")


def test_where_the_interval_and_the_test_still_differ_the_verdict_says_the_test_decides():
    # 40 images: the interval 0.0056 to 0.4174, mid-p 0.0525 (6 against 15)
    rate = PairedRate("sensitivity", images=40, both=4, only_this=6, only_other=15)
    assert rate.interval[0] > 0 and rate.better() is None
    assert rate.verdict("a", "b") == (
        "no clear difference on these images (6 right only by a, 15 only by b; McNemar mid-p = "
        "0.0525; the interval excludes 0, but the test decides)"
    )


def test_a_clear_difference_names_the_more_sensitive_or_specific_decision():
    sensitivity = PairedRate("sensitivity", images=40, both=25, only_this=0, only_other=10)
    assert sensitivity.p_value == pytest.approx(2 * _pmf(0, 10) - _pmf(0, 10))
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
