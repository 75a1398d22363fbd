import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from augmenter import CutMix, MixUp, soft_cross_entropy
from tests.augmenter.batches import identity_labels, partner_of, unique_batch

shapes = st.tuples(
    st.integers(1, 6),  # batch
    st.sampled_from([1, 3]),  # channels
    st.integers(1, 24),  # height
    st.integers(1, 24),  # width
)
seeds = st.integers(0, 2**31 - 1)
alphas = st.floats(0.1, 5.0)


def _pasted(images: torch.Tensor, mixed: torch.Tensor, index: int) -> torch.Tensor:
    """H×W mask of the pixels of image ``index`` that were replaced."""
    return (mixed[index] != images[index]).any(dim=0)


def _cutmix(shape, seed, alpha=1.0, per_sample=False, p=1.0):
    images = unique_batch(*shape)
    labels, num_classes = identity_labels(shape[0])
    generator = torch.Generator().manual_seed(seed)
    cutmix = CutMix(num_classes, alpha=alpha, p=p, per_sample=per_sample, generator=generator)
    mixed, targets = cutmix(images, labels)
    return images, mixed, targets


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=seeds, alpha=alphas, per_sample=st.booleans())
def test_cutmix_pastes_one_box_from_the_partner_and_leaves_the_rest(shape, seed, alpha, per_sample):
    images, mixed, targets = _cutmix(shape, seed, alpha, per_sample)
    assert mixed.shape == images.shape
    for i in range(shape[0]):
        mask = _pasted(images, mixed, i)
        if not mask.any():
            continue
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        box = torch.zeros_like(mask)
        box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        assert torch.equal(mask, box), "pasted pixels do not form one rectangle"
        partner = partner_of(targets, i)
        assert partner != i
        assert torch.equal(mixed[i][:, mask], images[partner][:, mask])
        assert torch.equal(mixed[i][:, ~mask], images[i][:, ~mask])


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=seeds, alpha=alphas, per_sample=st.booleans())
def test_cutmix_target_weight_is_the_exact_unpasted_fraction(shape, seed, alpha, per_sample):
    images, mixed, targets = _cutmix(shape, seed, alpha, per_sample)
    height, width = shape[2], shape[3]
    assert torch.allclose(targets.sum(dim=1), torch.ones(shape[0], dtype=targets.dtype))
    for i in range(shape[0]):
        if partner_of(targets, i) == i:
            continue  # mixed with itself: nothing visible changes, the label stays one-hot
        pasted = _pasted(images, mixed, i).sum().item()
        assert targets[i, i].item() == pytest.approx(1 - pasted / (height * width))


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=seeds)
def test_cutmix_shares_one_box_across_the_batch_unless_per_sample(shape, seed):
    images, mixed, targets = _cutmix(shape, seed)
    masks = [_pasted(images, mixed, i) for i in range(shape[0]) if partner_of(targets, i) != i]
    for mask in masks[1:]:
        assert torch.equal(mask, masks[0])


def test_per_sample_cutmix_draws_a_box_per_image():
    images, mixed, _ = _cutmix((16, 1, 32, 32), seed=0, per_sample=True)
    boxes = {tuple(_pasted(images, mixed, i).nonzero().flatten().tolist()) for i in range(16)}
    assert len(boxes) > 8


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=seeds, per_sample=st.booleans(), kind=st.sampled_from([CutMix, MixUp]))
def test_probability_zero_is_the_identity(shape, seed, per_sample, kind):
    images = unique_batch(*shape)
    labels, num_classes = identity_labels(shape[0])
    mixer = kind(num_classes, p=0.0, per_sample=per_sample, generator=torch.Generator())
    mixed, targets = mixer(images, labels)
    assert torch.equal(mixed, images)
    assert torch.equal(targets, F.one_hot(labels, num_classes).to(targets.dtype))


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=seeds, per_sample=st.booleans(), kind=st.sampled_from([CutMix, MixUp]))
def test_same_generator_seed_gives_the_same_result(shape, seed, per_sample, kind):
    images = unique_batch(*shape)
    labels, num_classes = identity_labels(shape[0])
    results = [
        kind(num_classes, per_sample=per_sample, generator=torch.Generator().manual_seed(seed))(
            images, labels
        )
        for _ in range(2)
    ]
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_probability_half_mixes_about_half_the_images():
    images = unique_batch(400, 1, 8, 8)
    labels = torch.zeros(400, dtype=torch.long)
    cutmix = CutMix(2, p=0.5, per_sample=True, generator=torch.Generator().manual_seed(1))
    mixed, _ = cutmix(images, labels)
    changed = (mixed != images).flatten(1).any(dim=1).float().mean().item()
    assert 0.35 < changed < 0.55  # mixed with itself or an empty box also leaves an image as is


def test_unclipped_box_covers_one_minus_lambda_of_the_image():
    # alpha this large puts λ within ±0.01 of 0.5, so every box not touching an edge covers half.
    images, mixed, _ = _cutmix((300, 1, 100, 100), seed=3, alpha=5000.0, per_sample=True)
    fractions = []
    for i in range(300):
        mask = _pasted(images, mixed, i)
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        if len(rows) and rows.min() > 0 and cols.min() > 0 and rows.max() < 99 and cols.max() < 99:
            fractions.append(mask.float().mean().item())
    assert len(fractions) > 5
    assert all(abs(f - 0.5) < 0.03 for f in fractions)


def test_box_centres_spread_over_the_whole_image():
    images, mixed, _ = _cutmix((400, 1, 40, 40), seed=5, alpha=5000.0, per_sample=True)
    touched = torch.zeros(40, 40, dtype=torch.bool)
    for i in range(400):
        touched |= _pasted(images, mixed, i)
    assert touched.all(), "some pixels were never inside a box: centres are not uniform"


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds, alpha=alphas, per_sample=st.booleans())
def test_mixup_blends_each_image_with_its_partner_by_its_target_weight(
    shape, seed, alpha, per_sample
):
    images = unique_batch(*shape)
    labels, num_classes = identity_labels(shape[0])
    mixup = MixUp(num_classes, alpha=alpha, per_sample=per_sample, generator=torch.Generator())
    mixup.generator.manual_seed(seed)
    mixed, targets = mixup(images, labels)
    assert mixed.shape == images.shape and targets.shape == (shape[0], num_classes)
    for i in range(shape[0]):
        partner = partner_of(targets, i)
        lam = targets[i, i]
        expected = lam * images[i] + (1 - lam) * images[partner]
        assert torch.allclose(mixed[i], expected)


def test_mixup_rejects_integer_images():
    with pytest.raises(ValueError, match="floating-point"):
        MixUp(2)(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]))


def test_cutmix_works_on_uint8_images():
    images = torch.randint(0, 255, (4, 3, 8, 8), dtype=torch.uint8)
    mixed, targets = CutMix(2, generator=torch.Generator())(images, torch.tensor([0, 1, 0, 1]))
    assert mixed.dtype == torch.uint8 and targets.dtype == torch.float32


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.tensor([0, 5]), r"labels must lie in \[0, 2\]"),
        (torch.tensor([0.0, 1.0]), "integer class indices"),
        (torch.tensor([0, 1, 2]), "one class index per image"),
    ],
)
def test_bad_labels_are_a_clear_error(labels, message):
    with pytest.raises(ValueError, match=message):
        CutMix(3)(torch.zeros(2, 1, 4, 4), labels)


@pytest.mark.parametrize(
    ("num_classes", "kwargs", "message"),
    [
        (3, {"alpha": 0.0}, "alpha must be a positive"),
        (3, {"p": 1.5}, "must lie in"),
        (1, {}, "at least"),
    ],
)
def test_bad_arguments_are_a_clear_error(num_classes, kwargs, message):
    with pytest.raises(ValueError, match=message):
        CutMix(num_classes, **kwargs)


def test_soft_cross_entropy_of_one_hot_targets_equals_the_label_loss():
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 2, 1, 1, 0])
    soft = soft_cross_entropy(logits, F.one_hot(labels, 3).float())
    assert torch.allclose(soft, F.cross_entropy(logits, labels))


def test_soft_cross_entropy_is_the_weighted_loss_of_both_labels():
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    a, b, lam = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 0, 1]), 0.3
    targets = lam * F.one_hot(a, 3).float() + (1 - lam) * F.one_hot(b, 3).float()
    expected = lam * soft_cross_entropy(logits, a) + (1 - lam) * soft_cross_entropy(logits, b)
    assert torch.allclose(soft_cross_entropy(logits, targets), expected)


def test_soft_cross_entropy_rejects_mismatched_targets():
    with pytest.raises(ValueError, match="logits' shape"):
        soft_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))
