"""A run's preprocessing turns images of its own size into model inputs, and only those."""

import numpy as np
import pytest

from runs import Preprocessing

PP = Preprocessing(image_size=(16, 12), channels=1, class_names=["a", "b"], mean=[0.5], std=[0.2])


def test_images_of_the_trained_size_become_unit_range_tensors():
    images = np.full((2, 16, 12, 1), 255, np.uint8)
    x = PP.to_tensor(images)
    assert x.shape == (2, 1, 16, 12) and float(x.max()) == 1.0


def test_images_of_another_size_are_refused_with_both_sizes_named():
    # A model with global pooling would run on them and answer nonsense.
    with pytest.raises(ValueError, match=r"16×12 pixels.*got 28×28"):
        PP.to_tensor(np.zeros((2, 28, 28, 1), np.uint8))
