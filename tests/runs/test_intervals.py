"""The one Wilson interval of the pipeline, against statsmodels' independent formula; the AUC of
bootstrap resamples, against scikit-learn's on each resample drawn out."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from runs import ResampledAuc, resample_counts, wilson_interval


@pytest.mark.parametrize("successes,total", [(9, 10), (0, 7), (30, 30), (1, 1), (112, 156)])
def test_the_interval_is_wilsons_at_95_percent(successes, total):
    expected = proportion_confint(successes, total, alpha=0.05, method="wilson")
    assert wilson_interval(successes, total) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("successes,total", [(0, 0), (3, 2), (-1, 4)])
def test_a_proportion_that_does_not_exist_is_refused(successes, total):
    with pytest.raises(ValueError, match="0 <= successes <= total"):
        wilson_interval(successes, total)


def test_resampled_auc_equals_scikit_learn_on_each_resample():
    rng = np.random.default_rng(6)
    scores = np.round(rng.random(120), 1)  # many ties
    positive = rng.random(120) < 0.3
    idx = rng.integers(0, 120, (4, 120))
    expected = [roc_auc_score(positive[row], scores[row]) for row in idx]
    got = ResampledAuc(scores, positive)(resample_counts(idx, 120))
    np.testing.assert_allclose(got, expected)


def test_a_resample_without_positives_has_no_auc():
    scores, positive = np.array([0.1, 0.4, 0.8]), np.array([False, False, True])
    got = ResampledAuc(scores, positive)(resample_counts(np.array([[0, 1, 1], [0, 1, 2]]), 3))
    assert np.isnan(got[0]) and got[1] == 1.0
