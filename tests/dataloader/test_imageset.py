"""ImageSet: subsets and mini-batches as float tensors."""

import numpy as np
import pytest
import torch

from dataloader import ImageSet


def make_set(n=10):
    images = np.arange(n * 2 * 2 * 3, dtype=np.uint8).reshape(n, 2, 2, 3)
    return ImageSet(
        images=images, labels=np.arange(n, dtype=np.int64), files=[str(i) for i in range(n)]
    )


def test_batches_are_float_nchw_in_unit_range():
    x, y = next(make_set().batches(4))
    assert x.shape == (4, 3, 2, 2) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert torch.equal(y, torch.arange(4))
    assert x[1, 2, 0, 1].item() == pytest.approx(make_set().images[1, 0, 1, 2] / 255.0)


def test_shuffled_batches_visit_every_image_once():
    labels = torch.cat([y for _, y in make_set().batches(3, shuffle=True, seed=0)])
    assert sorted(labels.tolist()) == list(range(10))
    assert labels.tolist() != list(range(10))


def test_shuffle_is_reproducible_with_a_seed():
    first = [y.tolist() for _, y in make_set().batches(4, shuffle=True, seed=5)]
    assert first == [y.tolist() for _, y in make_set().batches(4, shuffle=True, seed=5)]


def test_subset_keeps_images_labels_and_files_together():
    sub = make_set().subset(np.array([7, 2]))
    assert sub.labels.tolist() == [7, 2] and sub.files == ["7", "2"]
    np.testing.assert_array_equal(sub.images[0], make_set().images[7])


def test_a_subset_keeps_each_image_s_modality():
    images = make_set(3)
    images.modalities = np.array(["US", "", None], dtype=object)
    assert images.subset(np.array([2, 0])).modalities.tolist() == [None, "US"]
