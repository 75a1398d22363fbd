import pytest
import torch

from augmenter import RandomFlip


def test_each_image_is_either_itself_or_its_mirror():
    images = torch.rand(64, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    flipped = RandomFlip(p=0.5, generator=torch.Generator().manual_seed(1))(images)
    same = (flipped == images).flatten(1).all(dim=1)
    mirrored = (flipped == images.flip(-1)).flatten(1).all(dim=1)
    assert bool((same | mirrored).all())
    assert 10 < int(mirrored.sum()) < 54


def test_vertical_flip_mirrors_rows():
    images = torch.rand(8, 1, 6, 4)
    flipped = RandomFlip(horizontal=False, vertical=True, p=1.0)(images)
    assert torch.equal(flipped, images.flip(-2))


def test_probability_zero_is_the_identity():
    images = torch.rand(8, 1, 6, 4)
    assert torch.equal(RandomFlip(vertical=True, p=0.0)(images), images)


def test_same_seed_same_flips():
    images = torch.rand(32, 1, 4, 4)
    a = RandomFlip(generator=torch.Generator().manual_seed(7))(images)
    b = RandomFlip(generator=torch.Generator().manual_seed(7))(images)
    assert torch.equal(a, b)


def test_rejects_a_single_image():
    with pytest.raises(ValueError, match="B×C×H×W"):
        RandomFlip()(torch.rand(3, 4, 4))
