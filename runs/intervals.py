"""The 95 % Wilson score interval of a proportion: one formula for every figure of the pipeline
(the evaluator's per-class rates and accuracy, the trainer's validation operating point)."""

from scipy.stats import binomtest

CONFIDENCE = 0.95


def wilson_interval(successes: int, total: int) -> tuple[float, float]:
    """``(low, high)``, the Wilson score interval of ``successes`` in ``total`` (scipy's
    ``binomtest``): right for proportions near 0 or 1 on a few dozen images, where the normal
    approximation is not.

    Raises:
        ValueError: ``total`` is 0 (the proportion is undefined) or ``successes`` is not in
            ``0..total``.
    """
    if total <= 0 or not 0 <= successes <= total:
        raise ValueError(f"a proportion needs 0 <= successes <= total > 0, got {successes}/{total}")
    found = binomtest(int(successes), int(total)).proportion_ci(
        confidence_level=CONFIDENCE, method="wilson"
    )
    return float(found.low), float(found.high)
