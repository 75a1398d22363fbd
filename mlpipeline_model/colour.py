"""Whether decoded pixels show colour, or are grey stored as RGB; and the note of a served answer
when a grey model was sent colour (``colour_note``).

A decoded pixel's spread is how far its channels lie apart (max − min of R, G, B). Grey stored
as RGB has none: an RGB PNG of equal channels, and a grey image saved as an RGB JPEG (Pillow's
libjpeg keeps equal channels exactly, at every quality and chroma subsampling); a near-grey RGB
JPEG (channels ±2 apart, 4:2:0) decodes to spreads of at most 4 levels. Colour lies far above:
a photograph has spreads over 8 levels on 70–100 % of its pixels, a DICOM YBR_FULL colour
ultrasound on 4 %, a grey screenshot with thin yellow calipers and green text on 0.3 % (as PNG;
2.9 % once saved as JPEG, which smears their colour).
"""

import math

import numpy as np

COLOUR_SPREAD = 8
"""Levels (of 255) that a pixel's channels must lie more than apart for it to count as colour:
twice the largest spread of a near-grey RGB JPEG."""
COLOUR_SHARE = 0.005
"""Share of pixels over ``COLOUR_SPREAD`` that makes a training file colour (``shows_colour``):
a data set is colour by its pictures, not by a few coloured marks on grey scans."""
NOTE_SHARE = 0.001
"""Share of pixels over ``COLOUR_SPREAD`` that ``colour_note`` reports as colour not used: a
third of the thin coloured calipers and text of a 448² grey screenshot (0.3 %)."""
SAMPLED_PIXELS = 4_000_000
"""Pixels ``colour_note`` looks at, at most: a larger image is read at every n-th row and column
(40 megapixels took 175 ms in all, 20 ms so)."""


def colour_share(pixels: np.ndarray) -> float:
    """The share of ``pixels`` (uint8 ``H×W`` or ``H×W×3``) whose channels lie more than
    ``COLOUR_SPREAD`` levels apart; 0 for a grey array."""
    if pixels.ndim == 2 or pixels.size == 0:
        return 0.0
    # Channel by channel: numpy's max/min over the short last axis took 25× as long (0.65 ms
    # for a 128² image, more than decoding its JPEG), which every such file of a grey data set
    # pays when it is decoded. high >= low, so the uint8 difference cannot wrap.
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    return np.count_nonzero(spread > COLOUR_SPREAD) / spread.size


def shows_colour(pixels: np.ndarray, share: float = COLOUR_SHARE) -> bool:
    """Whether decoded ``pixels`` show colour (more than ``share`` of them over
    ``COLOUR_SPREAD``), not grey stored as RGB."""
    return colour_share(pixels) > share


def colour_note(pixels: np.ndarray, channels: int) -> str | None:
    """What to tell the client of decoded ``pixels`` (before ``conform``) sent to a model of
    ``channels``: that a colour image was read as grey, its colours unused; None for a colour
    model, a grey image, or grey stored as RGB (more than ``NOTE_SHARE`` of the pixels must
    show colour; at most ``SAMPLED_PIXELS`` of them are looked at)."""
    if channels != 1 or pixels.ndim != 3:
        return None
    step = math.ceil(math.sqrt(pixels.shape[0] * pixels.shape[1] / SAMPLED_PIXELS))
    if not shows_colour(pixels[::step, ::step] if step > 1 else pixels, NOTE_SHARE):
        return None
    return (
        "colour image read as grey: the model takes grey images (channels 1); its colours were "
        "not used"
    )
