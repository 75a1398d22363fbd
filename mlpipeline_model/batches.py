"""A list of images that are not all encoded files, checked item by item before it becomes one
array: ``np.asarray`` of a ragged or mixed list raises numpy's own error, naming no input."""

import math
from typing import Any

import numpy as np

from mlpipeline_model.pixels import ImageDecodeError


def _empty(item: Any) -> bool:
    """A missing cell: None, or the NaN a DataFrame puts in an empty one."""
    return item is None or (isinstance(item, float) and math.isnan(item))


def stacked(items: list[Any]) -> np.ndarray:
    """``items`` (arrays, or nested lists as JSON carries them) as one array.

    Raises:
        ImageDecodeError: with the ``index`` of the first item that is empty, an encoded file
            among arrays, or of another shape than the first.
    """
    for index, item in enumerate(items):  # an empty cell first: the likeliest slip
        if _empty(item):
            raise ImageDecodeError("it is empty (None or NaN): send an image in every row", index)
    for index, item in enumerate(items):
        if isinstance(item, bytes | bytearray | str):
            raise ImageDecodeError(
                "it is an encoded file among image arrays: send encoded files (bytes or base64) "
                "or arrays, not both in one call",
                index,
            )
    shapes = [np.shape(item) for item in items]
    for index, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise ImageDecodeError(
                f"it is an array of shape {shape} where the first is {shapes[0]}: arrays in one "
                "call must share a shape (send one call per size, or encoded files, which may "
                "differ)",
                index,
            )
    return np.asarray(items)
