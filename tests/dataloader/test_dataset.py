"""``load_dataset``'s refusal of training images that cannot be carved by patient
(``dataloader.dataset``)."""

from pathlib import Path

import pytest

from dataloader import DataError, load_dataset
from tests.dataloader.conftest import write_dicom


def _carve(root: Path) -> str:
    """The error of carving val from ``root``'s training images."""
    with pytest.raises(DataError) as caught:
        load_dataset(root, image_size=32, val_fraction=0.1, splits=("train", "val"))
    return str(caught.value)


def test_patients_joined_by_copies_are_named_as_the_patient_a_person_wrote(tmp_path):
    """The joined patient's name was numpy's repr, np.str_('P1')."""
    root = tmp_path / "dicom"
    write_dicom(root / "train" / "ct" / "a.dcm", patient="P1")
    write_dicom(root / "train" / "ct" / "copy-of-a.dcm", patient="P2")  # the same pixels
    write_dicom(root / "train" / "mr" / "b.dcm", "MR_small.dcm", patient="P1")
    said = _carve(root)
    assert "one patient (group) 'P1' (copies of images joined the patients into one)" in said


def test_one_patient_from_the_start_is_not_blamed_on_copies(tmp_path):
    root = tmp_path / "dicom"
    write_dicom(root / "train" / "ct" / "a.dcm", patient="ANON")
    write_dicom(root / "train" / "ct" / "copy-of-a.dcm", patient="ANON")
    write_dicom(root / "train" / "mr" / "b.dcm", "MR_small.dcm", patient="ANON")
    said = _carve(root)
    assert "belong to one patient (group) 'ANON', so none can be held out" in said
