"""The training data: loaded once through the data loader and held in memory as uint8 arrays."""

import argparse
from pathlib import Path

import numpy as np

from common import InvalidInput
from dataloader import compute_stats, load_dataset
from runs import Preprocessing
from trainer import distributed
from trainer.engine import Batches


def load(args: argparse.Namespace, dist_info: distributed.DistInfo):
    """Train and validation splits of ``args.data_dir``; under torchrun rank 0 fills the cache."""
    dataset = None
    if dist_info.is_main:
        dataset = _load(args)
    distributed.barrier(dist_info)
    if not dist_info.is_main:
        dataset = _load(args)
    return dataset


def _load(args: argparse.Namespace):
    # The test split (when there is one) is loaded only so that the logged statistics count it.
    path = Path(args.data_dir)
    with_test = path.is_file() or (path / "test").is_dir()
    return load_dataset(
        path,
        image_size=args.image_size,
        val_fraction=args.val_fraction,
        seed=args.seed,
        splits=("train", "val", "test") if with_test else ("train", "val"),
    )


def training_set(dataset) -> tuple[Batches, Batches, Preprocessing]:
    """The in-memory train and validation batches and the run's preprocessing description.

    Raises:
        InvalidInput: When there are fewer than two classes or no validation images.
    """
    names = list(dataset.class_names)
    if len(names) < 2 or len(np.unique(dataset.train.labels)) < 2:
        present = [names[i] for i in np.unique(dataset.train.labels)] or names
        raise InvalidInput(
            f"{dataset.source} holds only one class ({', '.join(present)}); a classifier needs "
            f"at least two: put each class's images in its own folder under "
            f"{dataset.source}/train/<class>/."
        )
    if dataset.val is None or len(dataset.val) == 0:
        raise InvalidInput(
            f"{dataset.source} gives no validation images; add a val/ folder or use "
            "--val-fraction above 0 so that some training images are held out."
        )
    stats = dataset.stats or compute_stats(dataset)
    mean, std = stats["mean"], stats["std"]
    height, width = dataset.train.images.shape[1:3]
    preprocessing = Preprocessing(
        image_size=(int(height), int(width)),
        channels=int(dataset.train.images.shape[3]),
        class_names=names,
        mean=mean,
        std=std,
    )
    train = Batches(dataset.train.images, dataset.train.labels, preprocessing.to_tensor)
    val = Batches(dataset.val.images, dataset.val.labels, preprocessing.to_tensor)
    return train, val, preprocessing
