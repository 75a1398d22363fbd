import itertools

import pytest

from common import CATEGORICAL, contrast_ratio, curve_style, hex_rgb

WHITE = (1.0, 1.0, 1.0)


def test_the_wcag_contrast_ratio_of_white_on_mid_blue_is_the_audits():
    assert contrast_ratio(WHITE, (0, 0, 0)) == pytest.approx(21)
    assert contrast_ratio(WHITE, hex_rgb("#6aaed6")) == pytest.approx(2.43, abs=0.005)


def test_every_colour_contrasts_3_to_1_with_white():
    assert all(contrast_ratio(hex_rgb(c), WHITE) >= 3 for c in CATEGORICAL)


def test_neighbouring_colours_differ_in_lightness():
    greys = [hex_rgb(c) for c in CATEGORICAL]
    assert all(contrast_ratio(a, b) >= 1.3 for a, b in itertools.pairwise(greys))


def test_curves_differ_in_colour_style_and_marker_and_none_is_the_chance_lines():
    styles = [curve_style(i) for i in range(4)]
    for key in ("color", "linestyle", "marker"):
        assert len({str(s[key]) for s in styles}) == 4, key
    assert not {s["linestyle"] for s in styles} & {"--"}
    assert not {s["marker"] for s in styles} & {"o"}
