"""A list of image arrays checked item by item (``mlpipeline_model.batches.stacked``), as the
logged model reads one: each refusal names the input it is about."""

import numpy as np
import pandas as pd
import pytest

from mlpipeline_model import ImageClassifierModel, ImageDecodeError

GREY = np.zeros((32, 32), np.uint8)


def _reader() -> ImageClassifierModel:
    return ImageClassifierModel((32, 32), 1, ["a", "b"])


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_an_empty_cell_is_refused_naming_its_row(missing):
    with pytest.raises(ImageDecodeError, match=r"empty \(None or NaN\)") as raised:
        _reader().read(pd.DataFrame({"image": [GREY, missing]}))
    assert raised.value.index == 1


def test_an_encoded_file_among_arrays_is_refused_naming_it():
    with pytest.raises(ImageDecodeError, match="encoded file among image arrays") as raised:
        _reader().read([GREY, b"\x89PNG..."])
    assert raised.value.index == 1


def test_arrays_of_two_shapes_are_refused_naming_the_first_that_differs():
    with pytest.raises(ImageDecodeError, match=r"shape \(20, 32\) where the first is \(32, 32\)"):
        _reader().read([GREY, GREY, np.zeros((20, 32), np.uint8)])


def test_arrays_of_one_shape_are_read_as_one_batch():
    images, notes = _reader().read([GREY, GREY + 7])
    assert images.shape == (2, 32, 32, 1) and notes == [None, None]


def test_an_empty_cell_among_encoded_files_is_named_as_empty():
    with pytest.raises(ImageDecodeError, match="empty") as raised:
        _reader().read(["aGVsbG8=", None, "aGVsbG8="])
    assert raised.value.index == 1
