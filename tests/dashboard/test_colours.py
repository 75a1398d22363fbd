import itertools

from dashboard.colours import CATEGORICAL


def luminance(colour: str) -> float:
    """WCAG's relative luminance of ``#rrggbb``."""
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: float, b: float) -> float:
    """WCAG's contrast ratio of two luminances."""
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def test_every_colour_contrasts_3_to_1_with_white():
    assert all(contrast(luminance(c), 1.0) >= 3 for c in CATEGORICAL)


def test_neighbouring_colours_differ_in_lightness():
    greys = [luminance(c) for c in CATEGORICAL]
    assert all(contrast(a, b) >= 1.3 for a, b in itertools.pairwise(greys))
