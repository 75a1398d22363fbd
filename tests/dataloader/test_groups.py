"""Group-aware splits: a group (patient) per image from a manifest or DICOM PatientID."""

import json
import shutil
import unicodedata
import warnings
from collections import OrderedDict

import numpy as np
import pytest

from dataloader import DataError, load_dataset
from dataloader import groups as groups_module
from dataloader.groups import group_split, merge_duplicates
from dataloader.pseudonyms import patient_pseudonym
from tests.dataloader.conftest import write_dicom, write_image


def _manifest(root, rows):
    (root / "groups.csv").write_text("file,group\n" + "".join(f"{f},{g}\n" for f, g in rows))


def _patients(root, per_patient=2):
    """Every image of ``root`` in a manifest, ``per_patient`` consecutive images per patient."""
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    _manifest(root, [(f, f"{f.split('/')[0]}-p{i // per_patient}") for i, f in enumerate(files)])
    return files


def test_manifest_groups_are_counted_per_split(image_folder):
    root = image_folder(per_class=4)  # 8 train, 8 test images
    _patients(root, per_patient=2)
    ds = load_dataset(root, val_fraction=0)
    assert ds.stats["groups"]["per_split"] == {"train": 4, "test": 4}
    assert ds.stats["groups"]["source"] == f"manifest {root / 'groups.csv'}"
    groups = dict(zip(ds.train.files, ds.train.groups, strict=True))
    assert (
        groups["train/benign/000.png"]
        == groups["train/benign/001.png"]
        != groups["train/benign/002.png"]
    )


def test_the_manifests_digest_follows_its_contents(image_folder):
    root = image_folder(per_class=4)
    assert load_dataset(root, val_fraction=0).group_digest is None
    _patients(root, per_patient=2)
    first = load_dataset(root, val_fraction=0)
    _patients(root, per_patient=1)  # the same images, other patients
    second = load_dataset(root, val_fraction=0)
    assert first.content_hash == second.content_hash  # the images' identity
    assert first.group_digest is not None
    assert first.group_digest != second.group_digest == second.stats["group_digest"]


def test_validation_is_carved_by_group(image_folder):
    root = image_folder(per_class=20)
    _patients(root, per_patient=2)
    ds = load_dataset(root, val_fraction=0.25, seed=3)
    assert len(ds.val) > 0
    assert not set(ds.train.groups) & set(ds.val.groups)
    assert ds.stats["groups"]["overlap"]["train/val"]["count"] == 0
    assert "by group" in ds.val_source


def test_groups_a_copy_links_become_one():
    groups = np.array(["p2", "p2", "p1", "p3", "p4"], dtype=object)
    clusters = np.array([0, 1, 2, 1, 3])  # images 1 (p2) and 3 (p3) are copies
    assert merge_duplicates(groups, clusters).tolist() == ["p2", "p2", "p1", "p2", "p4"]


def test_validation_by_group_keeps_copies_of_other_patients_with_them(image_folder):
    root = image_folder(per_class=20)
    files = _patients(root, per_patient=2)
    benign = [f for f in files if f.startswith("train/benign/")]
    for i in range(0, 10, 2):  # a copy of patient k's image under patient k + 5
        shutil.copy(root / benign[i], root / benign[i + 11])
    for seed in range(4):
        ds = load_dataset(root, val_fraction=0.25, seed=seed)
        assert len(ds.val) > 0 and "by group" in ds.val_source
        assert ds.stats["leakage"]["exact"]["train/val"]["count"] == 0


def test_a_patient_in_train_and_test_is_an_error(image_folder):
    root = image_folder(per_class=2)
    files = _patients(root, per_patient=1)
    rows = [(f, "shared" if f in (files[0], files[-1]) else f) for f in files]
    _manifest(root, rows)
    with pytest.raises(DataError, match=r"1 group.*train and test.*shared.*allow-group-overlap"):
        load_dataset(root)


def test_overlap_is_reported_when_explicitly_allowed(image_folder):
    root = image_folder(per_class=2)
    files = _patients(root, per_patient=1)
    _manifest(root, [(f, "shared" if f in (files[0], files[-1]) else f) for f in files])
    stats = load_dataset(root, allow_group_overlap=True, val_fraction=0).stats
    # a patient's identifier stays in the data folder: results that many read hold a pseudonym
    shared = {"count": 1, "examples": [patient_pseudonym("shared")]}
    assert stats["groups"]["overlap"]["train/test"] == shared
    assert "shared" not in json.dumps(stats["groups"])


def test_manifest_without_an_image_names_it(image_folder):
    root = image_folder(per_class=2)
    files = _patients(root)
    _manifest(root, [(f, "p") for f in files[1:]])
    with pytest.raises(DataError, match=rf"no group for 1 image.*{files[0]}.*file,group"):
        load_dataset(root)


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_manifest_saved_in_a_windows_code_page_is_refused_saying_where_and_how_to_fix(
    image_folder, encoding
):
    """Excel's 'CSV (Comma delimited)' writes ü as the one byte 0xfc: the load failed with
    "cannot read the group manifest ...: 'utf-8' codec can't decode byte 0xfc in position 57"."""
    root = image_folder(per_class=2)
    files = _patients(root)
    rows = "".join(f"{f},{'Müller' if i == 1 else f'p{i}'}\r\n" for i, f in enumerate(files))
    data = f"file,group\r\n{rows}".encode(encoding)
    (root / "groups.csv").write_bytes(data)
    with pytest.raises(DataError) as caught:
        load_dataset(root, val_fraction=0)
    said = str(caught.value)
    at = data.index(b"\xfc")
    where = f"is not UTF-8: the byte 0xfc at offset {at} (line 3) is not valid UTF-8"
    assert f"the group manifest {root / 'groups.csv'} {where}" in said
    assert "save it as 'CSV UTF-8 (Comma delimited)' in Excel" in said
    manifest = root / "groups.csv"  # the whole path: the command works from any folder
    assert (
        f"iconv -f cp1252 -t utf-8 {manifest} > {manifest}.utf8 && mv {manifest}.utf8 {manifest}"
        in said
    )
    assert "codec" not in said  # Python's words, not ours


def test_a_utf8_manifest_with_a_byte_order_mark_and_accents_is_read(image_folder):
    root = image_folder(per_class=2)
    files = _patients(root)
    rows = "".join(f"{f},Müller-{i}\n" for i, f in enumerate(files))
    (root / "groups.csv").write_bytes(f"file,group\n{rows}".encode("utf-8-sig"))
    ds = load_dataset(root, val_fraction=0)
    assert sorted(set(_group_of(ds).values())) == sorted(f"Müller-{i}" for i in range(len(files)))


def test_a_utf16_manifest_is_refused_saying_how_to_convert_it(image_folder):
    root = image_folder(per_class=2)
    (root / "groups.csv").write_bytes("file,group\r\n".encode("utf-16"))
    with pytest.raises(
        DataError, match=r"is UTF-16 text .* iconv -f utf-16 -t utf-8 /\S+/groups.csv"
    ):
        load_dataset(root)


def test_dicom_patient_id_is_the_group(tmp_path):
    root = tmp_path / "dicom"
    write_dicom(root / "train" / "ct" / "a.dcm", patient="anna")
    write_dicom(root / "train" / "mr" / "b.dcm", "MR_small.dcm", patient="ben")
    write_dicom(root / "test" / "ct" / "c.dcm", patient="anna")
    write_dicom(root / "test" / "mr" / "d.dcm", "MR_small.dcm", patient="carl")
    with pytest.raises(DataError, match=r"train and test.*anna"):
        load_dataset(root, image_size=32, val_fraction=0)
    stats = load_dataset(root, image_size=32, val_fraction=0, allow_group_overlap=True).stats
    assert stats["groups"]["source"] == "DICOM PatientID"


def test_folders_without_groups_report_none(image_folder):
    assert load_dataset(image_folder(per_class=2)).stats["groups"] is None


@pytest.mark.parametrize("n_groups", [3, 40])
def test_group_split_partitions_without_shared_groups(n_groups):
    rng = np.random.default_rng(0)
    groups = np.array([f"p{i}" for i in rng.integers(0, n_groups, 120)], dtype=object)
    labels = rng.integers(0, 2, 120)
    train, val = group_split(labels, groups, 0.2, seed=0)
    assert sorted([*train, *val]) == list(range(120))
    assert len(val) and not set(groups[train]) & set(groups[val])


def test_group_split_of_small_classes_falls_back_to_a_group_shuffle():
    labels = np.repeat([0, 1], 4)
    groups = np.array([f"p{i}" for i in range(8)], dtype=object)
    train, val = group_split(labels, groups, 0.1, seed=0)
    assert len(val) == 1 and len(train) == 7


def _group_of(ds) -> dict[str, str]:
    return {f: g for s in (ds.train, ds.test) for f, g in zip(s.files, s.groups, strict=True)}


def test_windows_paths_with_crlf_line_ends_are_read(image_folder):
    root = image_folder(per_class=2)
    files = _patients(root)
    rows = "".join(f"{f.replace('/', chr(92))},p{i}\r\n" for i, f in enumerate(files))
    (root / "groups.csv").write_bytes(f"file,group\r\n{rows}".encode())
    ds = load_dataset(root, val_fraction=0)
    assert [_group_of(ds)[f] for f in files] == [f"p{i}" for i in range(len(files))]
    assert ds.stats["groups"]["unmatched_rows"] == {"count": 0, "examples": []}


def test_absolute_paths_inside_the_data_folder_are_read_as_relative(image_folder):
    root = image_folder(per_class=2)
    files = _patients(root)
    _manifest(root, [(root / f, f"p{i}") for i, f in enumerate(files)])
    ds = load_dataset(root, val_fraction=0)
    assert [_group_of(ds)[f] for f in files] == [f"p{i}" for i in range(len(files))]


def test_an_absolute_path_outside_the_data_folder_is_an_error(image_folder, tmp_path):
    root = image_folder(per_class=2)
    _manifest(root, [(tmp_path / "elsewhere" / "a.png", "p1")])
    with pytest.raises(DataError, match=r"line 2: .*a.png is an absolute path outside the data "):
        load_dataset(root)


@pytest.mark.parametrize(("on_disk", "in_manifest"), [("NFD", "NFC"), ("NFC", "NFD")])
def test_a_manifest_in_another_unicode_form_than_the_file_names_matches_them(
    image_folder, on_disk, in_manifest
):
    root = image_folder(per_class=2)
    name = "patiënt-é.png"  # as macOS (NFD) or most other systems (NFC) spell it
    write_image(root / "train" / "benign" / unicodedata.normalize(on_disk, name), seed=99)
    files = _patients(root)
    _manifest(root, [(unicodedata.normalize(in_manifest, f), f"p{i}") for i, f in enumerate(files)])
    ds = load_dataset(root, val_fraction=0)  # it was a DataError naming the file twice
    assert ds.stats["groups"]["unmatched_rows"]["count"] == 0
    assert len(set(_group_of(ds).values())) == len(files)


def test_rows_that_match_no_image_are_counted_and_named(image_folder):
    root = image_folder(per_class=2)
    files = _patients(root)
    _manifest(root, [(f, "p") for f in files] + [("train/benign/gone.png", "p")])
    stats = load_dataset(root, val_fraction=0, splits=("train",)).stats  # test rows match
    assert stats["groups"]["unmatched_rows"] == {"count": 1, "examples": ["train/benign/gone.png"]}


def test_images_without_a_group_name_the_rows_that_match_none(image_folder):
    root = image_folder(per_class=2)
    files = _patients(root)
    _manifest(root, [(f"data/{f}", "p") for f in files[:3]] + [(f, "p") for f in files[3:]])
    with pytest.raises(
        DataError,
        match=r"no group for 3 image.*3 row\(s\) of it match no image "
        r"\(first: data/test/benign/000.png.*relative to the data folder, with /",
    ):
        load_dataset(root)  # fmt: skip


def test_a_class_smaller_than_the_folds_is_split_without_scikit_learns_warning():
    labels = np.array([0] * 40 + [1] * 8)  # 8 images of class 1, 10 folds for a fraction of 0.1
    groups = np.array([f"p{i}" for i in range(48)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the trainer printed "The least populated class ..."
        _, val = group_split(labels, groups, 0.1, 0)
    assert len(val) == 5 and set(labels[val]) == {0, 1}


def test_a_small_class_of_several_patients_gets_a_validation_image_whatever_the_seed():
    """5 images of 5 patients at a fraction of 0.1: half a validation image; a carve without
    one refuses a two-class run (its threshold is chosen on both classes)."""
    labels = np.array([0] * 45 + [1] * 5)
    groups = np.array([f"p{i}" for i in range(50)], dtype=object)
    for seed in range(20):
        train, val = group_split(labels, groups, 0.1, seed)
        assert set(labels[val]) == {0, 1} and set(labels[train]) == {0, 1}, seed


def test_a_third_class_of_two_patients_is_not_halved_for_a_validation_image():
    """With three classes no threshold needs every class in val: class 2's 100 images of two
    patients stay whole on one side rather than half of them in val."""
    labels = np.array([0] * 100 + [1] * 100 + [2] * 100)
    groups = np.array([f"p{i}" for i in range(200)] + ["q0"] * 50 + ["q1"] * 50, dtype=object)
    _, val = group_split(labels, groups, 0.1, 0)
    assert np.sum(labels[val] == 2) == 0


def _one_big_patient(root, classes=("a", "b", "c"), big=24):
    """A manifest giving ``big`` of class ``a``'s training images one patient, ``P-big``, and
    every other image its own group."""
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    in_a = [f for f in files if f.startswith("train/a/")][:big]
    _manifest(root, [(f, "P-big" if f in in_a else f) for f in files])


@pytest.mark.parametrize("seed", range(4))
def test_a_large_single_class_patient_is_not_carved_into_validation(image_folder, seed):
    root = image_folder(classes=("a", "b", "c"), per_class=30)
    _one_big_patient(root)
    ds = load_dataset(root, val_fraction=0.1, seed=seed, splits=("train", "val"))
    assert "P-big" in set(ds.train.groups)  # fold 0 put it in val: 24 of a's 30 images
    assert ds.stats["val_carve"]["share"]["total"] <= 0.2
    assert ds.stats["val_carve"]["note"] is None


def test_a_carve_far_from_the_fraction_is_noted_in_the_statistics(image_folder):
    root = image_folder(classes=("a", "b"), per_class=12)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    _manifest(root, [(f, f"p{int(f[-7:-4]) % 3}" if "train" in f else f) for f in files])
    carve = load_dataset(root, val_fraction=0.1, splits=("train", "val")).stats["val_carve"]
    # three patients, each with 4 images of a and 4 of b: any carve takes a third
    assert carve["share"] == {"a": 0.3333, "b": 0.3333, "total": 0.3333}
    assert carve["note"].startswith(
        "the validation split carved from train took 4 of 12 'a' images (33%); 4 of 12 'b' "
        "images (33%); 8 of 24 images in all (33%) for a fraction of 0.1: the images of a "
        "patient (group) stay together, and no carve came closer; add a val/ folder"
    )


def test_copies_of_one_image_are_carved_by_the_same_rule_as_a_patient(image_folder):
    root = image_folder(classes=("a", "b", "c"), per_class=30)
    copied = sorted((root / "train" / "a").glob("*.png"))
    for png in copied[1:24]:  # 24 copies of one image, kept together like a patient's images
        shutil.copy(copied[0], png)
    for seed in range(10):
        ds = load_dataset(root, val_fraction=0.1, seed=seed, splits=("train", "val"))
        assert ds.val_how == "carved_keeping_copies"
        assert np.sum(ds.val.labels == 0) <= 6, seed  # the 24 copies stay in train


def test_group_split_keeps_each_cluster_on_one_side():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    clusters = np.arange(len(labels)) // 4  # clusters of four images
    for seed in range(5):
        train, val = group_split(labels, clusters, 0.3, seed)
        assert len(val) and not set(clusters[train]) & set(clusters[val])
        assert sorted([*train, *val]) == list(range(len(labels)))


def test_training_images_all_of_one_patient_are_an_error_naming_it(tmp_path):
    root = tmp_path / "dicom"
    write_dicom(root / "train" / "ct" / "a.dcm", patient="ANONYMOUS")
    write_dicom(root / "train" / "mr" / "b.dcm", "MR_small.dcm", patient="ANONYMOUS")
    with pytest.raises(
        DataError,
        match=r"all 2 training images belong to one patient \(group\) 'ANONYMOUS', so none can "
        r"be held out for validation by patient; add a val/ folder, or a groups.csv manifest",
    ):  # it was an empty val, which the trainer blamed on --val-fraction
        load_dataset(root, image_size=32, val_fraction=0.1, splits=("train", "val"))


def test_images_without_a_patient_id_are_counted_per_split(tmp_path):
    root = tmp_path / "dicom"
    write_dicom(root / "train" / "ct" / "a.dcm", patient="anna")
    write_dicom(root / "train" / "mr" / "b.dcm", "MR_small.dcm", patient="")  # empty: none
    write_dicom(root / "test" / "ct" / "c.dcm", patient="carl")
    write_dicom(root / "test" / "mr" / "d.dcm", "MR_small.dcm", patient="dora")
    groups = load_dataset(root, image_size=32, val_fraction=0).stats["groups"]
    assert groups["ungrouped"] == {"train": 1, "test": 0}  # b.dcm is a group of its own


def test_a_carve_asked_for_again_is_the_same_and_made_once(monkeypatch):
    """A trainer's start carves the same validation split twice; the second is the first's."""
    monkeypatch.setattr(groups_module, "_CARVES", OrderedDict())
    calls = []
    made = groups_module._group_split
    monkeypatch.setattr(groups_module, "_group_split", lambda *a: calls.append(1) or made(*a))
    labels = np.repeat([0, 1], 20)
    groups = np.array([f"g{i // 2}" for i in range(40)], dtype=object)
    train, val = group_split(labels, groups, 0.25, seed=11)
    val[:] = -1  # a caller changing its arrays does not change the next answer
    again = group_split(labels, groups, 0.25, seed=11)
    other = group_split(labels, groups, 0.25, seed=12)
    assert len(calls) == 2  # seed 11 once, seed 12 once
    np.testing.assert_array_equal(again[0], train)
    assert -1 not in again[1] and len(again[1]) == 40 - len(train)
    assert not np.array_equal(other[1], again[1])
