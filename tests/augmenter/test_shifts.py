import pytest
import torch
import torch.nn.functional as F

from augmenter import RandomShift


def _offset(shifted: torch.Tensor, image: torch.Tensor, max_shift: int) -> tuple[int, int] | None:
    """The (down, right) move that turns ``image`` into ``shifted`` with a black border, if any."""
    height, width = image.shape[-2:]
    padded = F.pad(image, (max_shift,) * 4)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            top, left = max_shift - dy, max_shift - dx
            if torch.equal(padded[..., top : top + height, left : left + width], shifted):
                return dy, dx
    return None


def test_each_image_is_its_own_content_moved_within_the_limit():
    # Positive values so that no moved pixel can look like the black border.
    images = torch.rand(64, 3, 9, 11, generator=torch.Generator().manual_seed(0)) + 0.1
    shifted = RandomShift(2, generator=torch.Generator().manual_seed(1))(images)
    assert shifted.shape == images.shape
    offsets = [_offset(s, i, 2) for s, i in zip(shifted, images, strict=True)]
    assert None not in offsets
    # One draw per image and axis over the whole range, the extremes included.
    assert {dy for dy, _ in offsets} == {dx for _, dx in offsets} == {-2, -1, 0, 1, 2}


def test_uncovered_border_takes_the_fill_value():
    images = torch.ones(32, 1, 6, 6)
    shifted = RandomShift(3, fill=0.25, generator=torch.Generator().manual_seed(0))(images)
    assert set(shifted.unique().tolist()) == {0.25, 1.0}
    # However far it moved, a 6 px image keeps at least a 3×3 block of its ones.
    assert bool((shifted.flatten(1) == 1.0).sum(dim=1).ge(9).all())


def test_zero_shift_is_the_identity():
    images = torch.rand(4, 1, 5, 5)
    assert torch.equal(RandomShift(0)(images), images)


def test_same_seed_same_shifts():
    images = torch.rand(16, 1, 8, 8)
    a = RandomShift(2, generator=torch.Generator().manual_seed(7))(images)
    b = RandomShift(2, generator=torch.Generator().manual_seed(7))(images)
    assert torch.equal(a, b)


def test_rejects_a_negative_shift():
    with pytest.raises(ValueError, match="0 or more"):
        RandomShift(-1)


def test_rejects_a_single_image():
    with pytest.raises(ValueError, match="B×C×H×W"):
        RandomShift(1)(torch.rand(3, 4, 4))
