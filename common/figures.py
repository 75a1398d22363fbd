"""The one rule that writes a figure for a person (``figure``): the dashboard's tables, charts
and text alternatives (``dashboard.readable.figure``) and the evaluator's plots alike, so that a
plot's "AUC 0.8147" is the tables' 0.8147.
"""

import math
from decimal import ROUND_HALF_UP, Decimal

ZERO = 1e-12  # closer to 0 or ±1 is floating-point noise of it (a Wilson bound of 2e-17)
SMALL = 1e-3  # smaller figures keep 3 significant digits (``0.000418``, ``0.0005``)
TINY = 1e-6  # and still smaller ones are written in scientific notation (``5.00e-07``)
LARGE = 1e15  # and larger ones: no count or time of a run; a diverged loss
SMALL_DIGITS = 3


def figure(value: float | None, digits: int = 4) -> str:
    """``value`` for a person, to ``digits`` significant digits; ``–`` when missing or NaN.

    Rounded half up from the number as MLflow shows it (its shortest decimal, ``repr``): 0.99125
    reads 0.9913, as a person rounding MLflow's figure would. Rounding the binary value instead
    (Python's ``:.4g``) gave 0.9912, the value being stored a hair below 0.99125, while a table
    left to Streamlit's number formatting showed 0.9913. And:

    - a value that is not 1 never reads 1 (nor 1.000): digits are added until it differs, so
      that an AUC or a sensitivity short of perfect never looks perfect (0.99995 reads 0.99995,
      an interval's bound of 0.9996 to three digits 0.9996; 1.00004 reads 1.00004); likewise -1;
    - from 1 up, fixed notation, a whole number in full (12345 reads
      12345, 12345.6 reads 12346, 9999.5 reads 10000: rounded to the unit, never to ``1e+04``):
      epoch times in seconds, steps, counts. From ``LARGE`` (a diverged loss), scientific:
      ``3.403e+38``;
    - below ``SMALL`` (0.001), three significant digits in fixed notation (``0.0005``, a
      learning rate; ``-0.000418``, a small difference); below ``TINY`` (1e-6), in scientific
      notation (``5.00e-07``): a small value reads 0 only within ``ZERO`` of it;
    - within ``ZERO`` of 0 or of ±1, that number: a Wilson bound computed as 2.8e-17 is an
      exact 0 to floating-point noise (a figure of a test set is short of 1 by far more: an AUC
      by 1/(positives × negatives) at least);
    - a negative value with ``-`` (``-0.0123``); ``inf``, ``-inf`` as Python writes them.
    """
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return f"{value:g}"
    size = abs(value)
    if size < ZERO:
        return "0"
    if abs(size - 1) < ZERO:
        return "-1" if value < 0 else "1"
    exact = Decimal(repr(float(value)))
    if size < TINY or size >= LARGE:
        kept = SMALL_DIGITS if size < TINY else digits
        return f"{float(_rounded(exact, kept)):.{kept - 1}e}"  # writes the kept digits back
    if size < SMALL:
        return f"{_rounded(exact, SMALL_DIGITS).normalize():f}"  # 0.000418, not 4.18e-04
    kept = max(digits, exact.adjusted() + 1)  # a whole number in full
    rounded = _rounded(exact, kept)
    while abs(rounded) == 1:  # 0.99995: not 1 (ends: the value is not 1, its digits are few)
        kept += 1
        rounded = _rounded(exact, kept)
    return f"{rounded.normalize():f}"


def _rounded(exact: Decimal, kept: int) -> Decimal:
    """``exact`` rounded half up to ``kept`` significant digits."""
    step = Decimal(1).scaleb(exact.adjusted() - kept + 1)  # the last digit kept
    return exact.quantize(step, rounding=ROUND_HALF_UP)
