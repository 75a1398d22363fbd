"""Stage 1: load image folders (PNG, JPEG, DICOM) and MedMNIST ``.npz`` files as uint8 arrays,
with a decoded-image cache, dataset statistics, a cheap look at a split's classes, channels and
sizes (``inspect_data``), how class folder names compare (``class_key``) and a synthetic demo
dataset."""

from dataloader.dataset import load_dataset
from dataloader.errors import DataError
from dataloader.groups import FOLDER_SOURCE, check_overlap
from dataloader.images import any_colour
from dataloader.imageset import MAX_IMAGE_SIDE, DatasetSplits, ImageSet
from dataloader.inspect import DataSummary, inspect_data
from dataloader.leakage import duplicate_clusters, label_conflict_note
from dataloader.manifest import describe_unmatched
from dataloader.scan import class_key
from dataloader.splits import val_count
from dataloader.stats import compute_stats, describe_skipped, training_stats
from dataloader.synth import synthesize
from mlpipeline_model import MODALITY_CODES, parse_modalities  # what --modality may declare

__all__ = [
    "FOLDER_SOURCE",
    "MAX_IMAGE_SIDE",
    "MODALITY_CODES",
    "DataError",
    "DataSummary",
    "DatasetSplits",
    "ImageSet",
    "any_colour",
    "check_overlap",
    "class_key",
    "compute_stats",
    "describe_skipped",
    "describe_unmatched",
    "duplicate_clusters",
    "inspect_data",
    "label_conflict_note",
    "load_dataset",
    "parse_modalities",
    "synthesize",
    "training_stats",
    "val_count",
]
