"""What one ``POST /predict`` may hold, and its files decoded as the model's input.

Each image is limited by ``MAX_PIXELS`` (``mlpipeline_model``); a request as a whole by
``MAX_FILES`` files and ``MAX_REQUEST_PIXELS`` pixels, summed from the files' headers before any
is decoded: a few kilobytes of PNG can declare tens of megapixels, and a request of many such
files held a decoding thread for seconds.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from common import InvalidInput
from runs import MAX_PIXELS, declared_pixels

if TYPE_CHECKING:
    from predictor.core import Served

MAX_FILES = 256
"""Images per request; more is a 422 (split the batch)."""
MAX_REQUEST_PIXELS = 16 * MAX_PIXELS
"""Pixels the images of one request may declare in all (640 megapixels: 16 images of the largest
size, or all 256 at 2.5 megapixels); more is a 422 before anything is decoded."""


def check_request_pixels(files: Sequence[tuple[str, bytes]], limit: int) -> None:
    """Raise ``InvalidInput`` when the headers of ``files`` declare more than ``limit`` pixels
    in all (a file whose header cannot be read counts 0: decoding then says what is wrong)."""
    total = sum(declared_pixels(data) or 0 for _, data in files)
    if total > limit:
        raise InvalidInput(
            f"the {len(files)} images of this request declare {total / 1e6:,.0f} megapixels in "
            f"all, more than the {limit / 1e6:,.0f} megapixels one request may hold; nothing was "
            "predicted: send fewer or smaller images per request (split the batch)"
        )


def decode_files(
    served: "Served",
    files: Sequence[tuple[str, bytes]],
    max_pixels: int | None = MAX_REQUEST_PIXELS,
) -> tuple[np.ndarray, list[str | None]]:
    """The uploaded images as the model's uint8 ``N×H×W×C``, with each one's ``input_note`` (a
    colour image read as grey by a grey model; else None); ``InvalidInput`` naming a bad file,
    or the request's size when it holds more than ``MAX_FILES`` files or ``max_pixels`` pixels
    (None: no limit of the request's pixels, for the command line)."""
    if not files:
        raise InvalidInput("send at least one image in the multipart field 'files'")
    if len(files) > MAX_FILES:
        raise InvalidInput(f"{len(files)} images in one request; send at most {MAX_FILES}")
    if max_pixels is not None:
        check_request_pixels(files, max_pixels)
    images, notes, bad = [], [], []
    for number, (name, data) in enumerate(files, 1):
        try:
            image, note = served.classifier.decode_with_note(data)
            images.append(image)
            notes.append(note)
        except ValueError as exc:  # every bad file is named, with its place (names may repeat)
            bad.append(f"file {name!r} (#{number} of {len(files)}) is not a usable image: {exc}")
    if len(bad) == 1:
        raise InvalidInput(f"{bad[0]}; nothing was predicted: leave it out or replace it")
    if bad:
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise InvalidInput(
            f"{len(bad)} of {len(files)} files are not usable images; nothing was predicted: "
            f"leave them out or replace them. {'; '.join(bad[:10])}{more}"
        )
    return np.stack(images), notes
