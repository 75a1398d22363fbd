"""Fixtures of the data loader tests: small image folders written for real on disk."""

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from dataloader import synthesize


def write_image(path: Path, size: tuple[int, int] = (20, 24), mode: str = "RGB", seed: int = 0):
    """A random image of ``size`` = (H, W) in PIL ``mode`` at ``path`` (format from suffix)."""
    rng = np.random.default_rng(seed)
    shape = (*size, 3) if mode == "RGB" else size
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path) -> Callable[..., Path]:
    """Factory: ``root/<split>/<class>/<i>.png`` with ``per_class`` random images per class."""

    def make(
        splits=("train", "test"),
        classes=("benign", "malignant"),
        per_class: int = 4,
        size: tuple[int, int] = (20, 24),
        mode: str = "RGB",
        suffix: str = ".png",
    ) -> Path:
        root = tmp_path / "data"
        seed = 0
        for split in splits:
            for cls in classes:
                for i in range(per_class):
                    seed += 1
                    write_image(root / split / cls / f"{i:03d}{suffix}", size, mode, seed)
        return root

    return make


def write_dicom(path: Path, source: str = "CT_small.dcm", patient: str | None = None) -> Path:
    """A copy of pydicom's bundled ``source`` at ``path``, with PatientID ``patient`` if given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if patient is None:
        shutil.copy(get_testdata_file(source), path)
    else:
        ds = pydicom.dcmread(get_testdata_file(source))
        ds.PatientID = patient
        ds.save_as(path)
    return path


@pytest.fixture
def dicom_folder(tmp_path) -> Path:
    """pydicom's bundled CT_small.dcm and MR_small.dcm in a train/test folder layout, one patient
    per file."""
    root = tmp_path / "dicom"
    for split in ("train", "test"):
        for cls, name in (("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")):
            write_dicom(root / split / cls / name, name, patient=f"{split}-{cls}")
    return root


@pytest.fixture
def tiny_demo(tmp_path) -> Path:
    """A small synthetic demo set: 6 train + 3 test images per class, 32×32."""
    return synthesize(tmp_path / "demo", train_per_class=6, test_per_class=3, size=32, seed=1)
