"""The stratified, seeded validation split."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataloader.splits import stratified_split

LABELS = np.repeat([0, 1, 2], [50, 30, 20])


def test_each_class_gives_its_share_to_val():
    _, val = stratified_split(LABELS, 0.2, seed=0)
    assert np.bincount(LABELS[val]).tolist() == [10, 6, 4]


def test_train_and_val_partition_the_indices():
    train, val = stratified_split(LABELS, 0.3, seed=0)
    assert not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(len(LABELS)))


def test_same_seed_same_split():
    np.testing.assert_array_equal(
        stratified_split(LABELS, 0.2, 7)[1], stratified_split(LABELS, 0.2, 7)[1]
    )


def test_other_seed_other_split():
    assert set(stratified_split(LABELS, 0.2, 1)[1]) != set(stratified_split(LABELS, 0.2, 2)[1])


def test_tiny_classes_keep_an_image_for_training():
    labels = np.array([0, 1, 1, 2, 2, 2])
    train, _ = stratified_split(labels, 0.9, seed=0)
    assert set(labels[train]) == {0, 1, 2}


@settings(max_examples=50, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=1, max_size=60),
    fraction=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**16),
)
def test_any_split_partitions_and_keeps_every_class_in_train(labels, fraction, seed):
    labels = np.array(labels)
    train, val = stratified_split(labels, fraction, seed)
    assert sorted([*train, *val]) == list(range(len(labels)))
    assert set(labels[train]) == set(labels)
