"""The loader's result types: one split (``ImageSet``) and a whole dataset (``DatasetSplits``)."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass
class ImageSet:
    """The images of one split, all of one size and channel count.

    Attributes:
        images: uint8 ``N×H×W×C`` (may be a copy-on-write memory map of the cache).
        labels: int64 ``N``, indices into ``DatasetSplits.class_names``.
        files: Path of each image relative to the dataset folder (``None`` for ``.npz``).
        original_sizes: int ``N×2``, (height, width) of each image before resizing.
        groups: The group (patient) of each image, object array ``N`` of str; None when the
            dataset has no groups (see ``dataloader.groups``).
        modalities: The DICOM Modality of each image, object array ``N``: the code (``"US"``),
            ``""`` for a DICOM file that names none, None for a PNG or JPEG; None when no file
            of the data set is DICOM (``.npz`` files included).
        frames: The frames each file holds, int array ``N`` (its first is the image; a cine
            loop holds more); None as ``modalities``.
        bit_depths: The bits per sample each file stores, int array ``N``
            (``dataloader.images.read_header``: 16 for a 16-bit PNG, a DICOM file's
            BitsStored; 8 for a ``.npz``); None when not known.
    """

    images: np.ndarray
    labels: np.ndarray
    files: list[str] | None = None
    original_sizes: np.ndarray | None = None
    groups: np.ndarray | None = None
    modalities: np.ndarray | None = None
    frames: np.ndarray | None = None
    bit_depths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> "ImageSet":
        """The images at ``indices``, in that order."""
        return ImageSet(
            images=np.ascontiguousarray(self.images[indices]),
            labels=self.labels[indices],
            files=[self.files[i] for i in indices] if self.files is not None else None,
            original_sizes=(
                self.original_sizes[indices] if self.original_sizes is not None else None
            ),
            groups=self.groups[indices] if self.groups is not None else None,
            modalities=self.modalities[indices] if self.modalities is not None else None,
            frames=self.frames[indices] if self.frames is not None else None,
            bit_depths=self.bit_depths[indices] if self.bit_depths is not None else None,
        )

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int | None = None
    ) -> Iterator[tuple["torch.Tensor", "torch.Tensor"]]:
        """Mini-batches ``(x, y)``: float32 ``B×C×H×W`` in [0, 1] and int64 labels ``B``.

        Args:
            batch_size: Images per batch (the last batch may be smaller).
            shuffle: Visit the images in a random order.
            seed: Seed of that order (a fresh random order when None).
        """
        import torch

        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else None
        for start in range(0, len(self), batch_size):
            if order is None:  # a slice: no copy of the (possibly memory-mapped) array
                images = self.images[start : start + batch_size]
                labels = self.labels[start : start + batch_size]
            else:
                idx = order[start : start + batch_size]
                images, labels = self.images[idx], self.labels[idx]
            x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
            yield x.float().div_(255.0), torch.from_numpy(np.ascontiguousarray(labels))


# How a data set's validation split was made (``DatasetSplits.val_how``): its own val/ folder or
# an .npz file's val split, carved from train (stratified; by group, every group on one side;
# keeping duplicate copies on one side), or none.
MAX_IMAGE_SIDE = 4096  # pixels: the largest side an image is resized to (--image-size and bounds)
VAL_HOWS = ("folder", "npz", "carved", "carved_by_group", "carved_keeping_copies", "none")


@dataclass
class DatasetSplits:
    """A loaded dataset: the requested splits plus what describes it.

    Attributes:
        class_names: Label ``i`` is ``class_names[i]``.
        train, val, test: The splits; ``None`` when not requested (or val with fraction 0).
        source: The folder or ``.npz`` path the data came from.
        content_hash: sha256 of the file names and contents (``dataloader.digests``), or the
            BLAKE2b digest of the ``.npz`` file's bytes.
        image_size: ``(H, W)`` of every image.
        channels: 1 or 3.
        format: ``"folder"`` or ``"npz"``.
        val_source: Where val came from, in words (for people and the run's stats):
            ``"folder"``, ``"npz"``, ``"carved from train ..."`` (how, fraction, seed, copies
            kept), or ``"none"``.
        val_how: The same as one of ``VAL_HOWS``, for code that acts on it.
        val_carve_units: When val was carved, how many units each class's training images
            formed to carve from (patients or other groups, duplicate copies joined into one;
            every image its own unit without groups or copies): a class of one unit stays in
            train whole whatever the fraction. None otherwise.
        val_carve: When val was carved, ``splits.carve_report``: the requested fraction, the
            share of each class (and of all images) that went to val, and a ``note`` when it is
            far from the fraction. None otherwise.
        skipped: ``{"file", "reason"}`` for every file that could not be used.
        group_source: Where the groups came from: ``"manifest <path>"``, ``"DICOM PatientID"``,
            ``"subfolders"`` (the folders below the class folders) or ``"none"``.
        unmatched_rows: The files named in the group manifest that match no image, in row
            order (a misspelt or deleted file).
        split_hashes: Each loaded split's own hash (of a folder split: the ``content_hash`` of
            its files as read, before val is carved from train; of an ``.npz`` split: the digest
            of its arrays), what a load of that split alone finds: an evaluation's test data is
            compared with the training's.
        group_digest: The BLAKE2b digest of the group manifest's bytes (``file_digest``) when
            one gave the groups, else None: the content hash covers the images only, and the
            manifest decides how val is carved and what counts as a shared patient.
    """

    class_names: list[str]
    train: ImageSet | None
    val: ImageSet | None
    test: ImageSet | None
    source: str
    content_hash: str
    image_size: tuple[int, int]
    channels: int
    format: str
    val_source: str = "none"
    val_how: str = "none"
    val_carve_units: list[int] | None = None
    val_carve: dict[str, Any] | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    group_source: str = "none"
    unmatched_rows: list[str] = field(default_factory=list)
    split_hashes: dict[str, str] = field(default_factory=dict)
    group_digest: str | None = None
    _stats: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def stats(self) -> dict[str, Any]:
        """JSON-able statistics (see ``compute_stats``), computed on first use."""
        if self._stats is None:
            from dataloader.stats import compute_stats

            self._stats = compute_stats(self)
        return self._stats

    def split(self, name: str) -> ImageSet | None:
        """The split called ``name`` ("train", "val" or "test")."""
        return {"train": self.train, "val": self.val, "test": self.test}[name]


@dataclass
class Loaded:
    """What a format reader (folder, npz) hands back to ``load_dataset``."""

    class_names: list[str]
    sets: dict[str, ImageSet]
    image_size: tuple[int, int]
    channels: int
    content_hash: str
    skipped: list[dict[str, str]]
    format: str
    group_source: str = "none"
    unmatched_rows: list[str] = field(default_factory=list)
    split_hashes: dict[str, str] = field(default_factory=dict)
    group_digest: str | None = None


def native_fit(
    size: tuple[int, int], minimum: int | None, maximum: int | None = None
) -> tuple[int, int]:
    """``size`` (height, width) scaled, aspect kept, so that its shorter side is at least
    ``minimum`` and then its longer side at most ``maximum`` (the maximum wins where the two
    disagree, since it is what keeps memory bounded); None or 0 leaves that bound off."""
    height, width = size
    shorter, longer = min(size), max(size)
    if minimum and shorter < minimum:
        height, width = (
            min(MAX_IMAGE_SIDE, max(minimum, round(s * minimum / shorter))) for s in size
        )
        longer = max(height, width)
    if maximum and longer > maximum:
        height, width = (max(1, min(maximum, round(s * maximum / longer))) for s in (height, width))
    return height, width
