"""Pseudonyms of patients and files in results that many people read."""

import re

import pytest

from common import StartupError, get_settings
from dataloader.images import IMAGE_SUFFIXES
from dataloader.pseudonyms import file_pseudonym, patient_pseudonym

KEY = b"0123456789abcdef0123"


def test_a_file_s_pseudonym_keeps_split_class_and_kind_and_hides_the_rest():
    name = file_pseudonym("test/benign/MRN778899/DOE_JANE_1.DCM", KEY, ["benign", "malignant"])
    assert name.startswith("test/benign/~") and name.endswith(".dcm")
    assert "MRN" not in name and "DOE" not in name


@pytest.mark.parametrize(
    "path,shown",
    [
        ("test/MRN123456/IM0001.dcm", r"test/~[0-9a-f]{12}\.dcm"),  # not a class: hashed
        ("archive/DOE_JANE/x.png", r"~[0-9a-f]{12}\.png"),  # not a split either
        ("test/benign/DOE.12345", r"test/benign/~[0-9a-f]{12}"),  # no image suffix: hashed
    ],
)
def test_folders_and_endings_that_may_be_names_stay_in_the_hash(path, shown):
    assert re.fullmatch(shown, file_pseudonym(path, KEY, ["benign"]))


def test_the_suffixes_kept_are_the_loaders():
    for suffix in IMAGE_SUFFIXES:
        assert file_pseudonym(f"test/a/x{suffix.upper()}", KEY, ["a"]).endswith(suffix)


def test_a_file_s_pseudonym_is_the_same_under_one_key_and_another_under_another():
    path = "train/malignant/p17/0001.png"
    assert file_pseudonym(path, KEY) == file_pseudonym(path, KEY)
    assert file_pseudonym(path, KEY) != file_pseudonym(path, b"another key of 16+ chars")
    assert file_pseudonym(path, KEY) != file_pseudonym("train/malignant/p18/0001.png", KEY)


def test_pseudonyms_without_a_key_are_refused_at_start(monkeypatch):
    monkeypatch.setenv("FILE_NAMES", "pseudonyms")
    monkeypatch.delenv("PSEUDONYM_KEY", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(StartupError, match="FILE_NAMES=pseudonyms needs PSEUDONYM_KEY"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_a_short_key_is_refused_at_start_without_showing_it(monkeypatch):
    monkeypatch.setenv("PSEUDONYM_KEY", "short-secret")
    get_settings.cache_clear()
    try:
        with pytest.raises(StartupError, match=r"PSEUDONYM_KEY.*at least 16 characters") as caught:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "short-secret" not in str(caught.value)


def test_a_patient_s_pseudonym_does_not_hold_the_identifier(monkeypatch):
    monkeypatch.setenv("PSEUDONYM_KEY", KEY.decode())
    get_settings.cache_clear()
    try:
        first = patient_pseudonym("MRN778899")
        assert first == patient_pseudonym("MRN778899") != patient_pseudonym("MRN778898")
        assert first.startswith("patient-") and "778899" not in first
    finally:
        get_settings.cache_clear()
