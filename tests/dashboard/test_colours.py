import itertools

from dashboard.colours import CATEGORICAL
from evaluator.plots import relative_luminance


def luminance(colour: str) -> float:
    """WCAG's relative luminance of ``#rrggbb``."""
    return relative_luminance(tuple(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)))


def contrast(a: float, b: float) -> float:
    """WCAG's contrast ratio of two luminances."""
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def test_every_colour_contrasts_3_to_1_with_white():
    assert all(contrast(luminance(c), 1.0) >= 3 for c in CATEGORICAL)


def test_neighbouring_colours_differ_in_lightness():
    greys = [luminance(c) for c in CATEGORICAL]
    assert all(contrast(a, b) >= 1.3 for a, b in itertools.pairwise(greys))
