"""The pipeline's categorical colours and curve styles, for the dashboard's charts and the
evaluator's and explainer's plots alike, WCAG's contrast ratio that chooses them, and the one
rendering of those plots as PNG bytes (``png_bytes``).

``CATEGORICAL``: Okabe-Ito and Tol hues, each >= 3:1 against white (WCAG 1.4.11, where
Streamlit's default second colour #83c9ff is 1.79:1 and seaborn's colour-blind orange 2.6:1),
ordered so that neighbours also differ in lightness (>= 1.3:1): up to three are all told apart
without colour vision too; beyond, only neighbours are, so curves also differ in line style and
marker (``curve_style``), the embedding map shows the outcome by shape, and every chart names
its classes in its legend and text alternative.
"""

import io
from typing import Protocol

CATEGORICAL = (
    "#332288",
    "#D55E00",
    "#117733",
    "#CC79A7",
    "#0072B2",
    "#882255",
    "#999933",
    "#000000",
)
# "--" is the chance (or random-order) line's and "o" an operating point's: no class gets them.
LINE_STYLES = ("-", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))
MARKERS = ("s", "^", "D", "v", "P", "X", "*", "<", ">", "h")


def curve_style(index: int) -> dict:
    """The colour, line style and marker of the ``index``-th curve as matplotlib ``plot``
    keywords (markers spaced along the curve, not on every point): curves differ by all three,
    since two colours can look the same under colour blindness or in greyscale (WCAG 1.4.1)."""
    return {
        "color": CATEGORICAL[index % len(CATEGORICAL)],
        "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
        "marker": MARKERS[index % len(MARKERS)],
        "markevery": 0.1,
        "markersize": 5,
    }


def relative_luminance(rgb: tuple[float, ...]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour (components in ``[0, 1]``; alpha ignored)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """WCAG 2.x contrast ratio of two colours, 1 to 21."""
    lighter, darker = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def hex_rgb(colour: str) -> tuple[float, float, float]:
    """``#rrggbb`` as components in ``[0, 1]``."""
    return tuple(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))


PNG_DPI = 100  # the evaluator's and explainer's artifacts: changing it changes every PNG's bytes


class _Savable(Protocol):  # a matplotlib Figure, without importing matplotlib here
    def savefig(self, fname, **kwargs) -> None: ...


def png_bytes(fig: _Savable) -> bytes:
    """A matplotlib figure as the PNG bytes that the evaluator and the explainer log: ``PNG_DPI``,
    cropped to what is drawn (``bbox_inches="tight"``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
    return buffer.getvalue()
