"""The check, before training, that validation can choose a two-class decision threshold."""

import numpy as np
import pytest

from common import InvalidInput
from trainer.operating_point import check_threshold_data

CLASSES = ["benign", "malignant"]
ONLY_BENIGN = np.zeros(3, dtype=np.int64)


def test_a_class_kept_whole_in_train_with_its_copies_is_named_as_the_cause():
    carved = "carved from train stratified (fraction 0.1, seed 0; 19 duplicate image(s) kept with "
    with pytest.raises(InvalidInput) as caught:
        check_threshold_data(ONLY_BENIGN, CLASSES, carved + "their copies)")
    message = str(caught.value)
    assert "copies of an image (exact or near) and the images of one patient stay" in message
    assert "so no --val-fraction gives validation one" in message
    assert "use a larger --val-fraction" not in message  # it was the only advice: useless here


def test_a_val_folder_without_a_class_asks_for_its_images_not_a_val_fraction():
    with pytest.raises(InvalidInput, match=r"add images of 'malignant' to val/, or pass") as caught:
        check_threshold_data(ONLY_BENIGN, CLASSES, "folder")
    assert "--val-fraction" not in str(caught.value)


def test_a_small_class_carved_without_copies_can_take_a_larger_fraction():
    with pytest.raises(InvalidInput, match=r"use a larger --val-fraction"):
        check_threshold_data(ONLY_BENIGN, CLASSES, "carved from train stratified (fraction 0.1)")
