"""The one Wilson interval of the pipeline, against statsmodels' independent formula."""

import pytest
from statsmodels.stats.proportion import proportion_confint

from runs import wilson_interval


@pytest.mark.parametrize("successes,total", [(9, 10), (0, 7), (30, 30), (1, 1), (112, 156)])
def test_the_interval_is_wilsons_at_95_percent(successes, total):
    expected = proportion_confint(successes, total, alpha=0.05, method="wilson")
    assert wilson_interval(successes, total) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("successes,total", [(0, 0), (3, 2), (-1, 4)])
def test_a_proportion_that_does_not_exist_is_refused(successes, total):
    with pytest.raises(ValueError, match="0 <= successes <= total"):
        wilson_interval(successes, total)
