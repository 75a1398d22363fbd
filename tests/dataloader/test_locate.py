"""FILE_NAMES=pseudonyms: results name images without their patient folders or file names, and
``python -m dataloader locate`` finds the file again."""

import pytest

from common import get_settings
from dataloader import DataError, load_dataset
from dataloader.__main__ import main
from tests.dataloader.conftest import write_image

KEY = "0123456789abcdef0123"


@pytest.fixture
def pseudonyms(monkeypatch):
    monkeypatch.setenv("FILE_NAMES", "pseudonyms")
    monkeypatch.setenv("PSEUDONYM_KEY", KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def patient_folders(tmp_path):
    """Images in per-patient folders named by record number, as PACS exports write them."""
    root = tmp_path / "data"
    for split in ("train", "test"):
        for i, cls in enumerate(("benign", "malignant")):
            for k in range(3):
                write_image(root / split / cls / f"MRN10{i}{k}" / f"DOE_{k}.png", seed=10 * i + k)
    (root / "test" / "benign" / "MRN1000" / "DOE_9.png").write_bytes(b"not an image")
    return root


def test_results_name_images_and_skipped_files_by_pseudonyms(pseudonyms, patient_folders):
    ds = load_dataset(patient_folders, val_fraction=0)
    names = [*ds.train.files, *ds.test.files, *(s["file"] for s in ds.skipped)]
    assert len(names) == 13 and not [n for n in names if "MRN" in n or "DOE" in n]
    assert all(n.split("/")[2].startswith("~") for n in names)
    assert ds.skipped[0]["file"].startswith("test/benign/~")


def test_locate_finds_the_file_of_each_pseudonym(pseudonyms, patient_folders, capsys):
    test = load_dataset(patient_folders, val_fraction=0, splits=("test",)).test
    assert main(["locate", str(patient_folders), *test.files[:2]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == test.files[:2]
    assert lines[0].split("\t")[1].startswith("test/benign/MRN10")


def test_locate_says_which_pseudonym_names_no_file(pseudonyms, patient_folders, capsys):
    assert main(["locate", str(patient_folders), "test/benign/~000000000000.png"]) == 1
    assert "no file of this folder" in capsys.readouterr().out


def test_paths_are_kept_by_default(patient_folders):
    get_settings.cache_clear()
    ds = load_dataset(patient_folders, val_fraction=0)
    assert "train/benign/MRN1000/DOE_0.png" in ds.train.files


def test_locate_finds_a_manifest_row_that_names_no_image(pseudonyms, patient_folders, capsys):
    """Such rows are listed by pseudonym in dataset_stats.json; a row is read as the loader
    reads it (``./`` and Windows separators included)."""
    root = patient_folders
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    rows = [f"{f},{f.split('/')[0]}-{f.split('/')[2]}" for f in files]  # split-patient
    rows.append(r".\test\benign\GHOST_MRN9\x.png,MRN9")
    (patient_folders / "groups.csv").write_text("file,group\n" + "\n".join(rows) + "\n")
    stats = load_dataset(patient_folders, val_fraction=0).stats
    [ghost] = stats["groups"]["unmatched_rows"]["examples"]
    assert "GHOST" not in ghost and ghost.startswith("test/benign/~")
    assert main(["locate", str(patient_folders), ghost]) == 0
    assert capsys.readouterr().out.split("\t")[1].strip() == "test/benign/GHOST_MRN9/x.png"


def test_a_loading_error_names_files_as_results_do(pseudonyms, tmp_path):
    """An evaluation job fails with such a text, which its record keeps for all to read."""
    root = tmp_path / "data"
    write_image(root / "train" / "a" / "p1" / "x.png")
    (root / "train" / "b" / "MRN555" / "DOE_1.png").parent.mkdir(parents=True)
    (root / "train" / "b" / "MRN555" / "DOE_1.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"train/b could be used \(first: train/b/~[0-9a-f]{12}"):
        load_dataset(root, val_fraction=0, splits=("train",))


def test_locate_follows_a_linked_class_folder_as_the_loader_does(pseudonyms, tmp_path, capsys):
    archive = tmp_path / "archive" / "MRN7"
    write_image(archive / "DOE_7.png")
    root = tmp_path / "data"
    write_image(root / "train" / "a" / "x.png", seed=1)
    (root / "train" / "b").symlink_to(archive.parent, target_is_directory=True)
    [_, linked] = load_dataset(root, val_fraction=0, splits=("train",)).train.files
    assert main(["locate", str(root), linked]) == 0
    assert capsys.readouterr().out.split("\t")[1].strip() == "train/b/MRN7/DOE_7.png"


def test_locate_with_a_bad_key_exits_2_in_one_line(patient_folders, monkeypatch, capsys):
    """Exit 1 says a name was not found; a setting that cannot work is an error."""
    monkeypatch.setenv("PSEUDONYM_KEY", "short-secret")
    get_settings.cache_clear()
    try:
        assert main(["locate", str(patient_folders), "test/benign/~0.png"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("error: invalid settings: PSEUDONYM_KEY=(hidden): must be a secret")
    assert "short-secret" not in err and err.count("\n") == 1


def test_locate_finds_a_skipped_link_inside_a_class_folder(pseudonyms, tmp_path, capsys):
    """The loader lists it among the skipped files, by its pseudonym."""
    root = tmp_path / "data"
    write_image(root / "train" / "a" / "x.png")
    write_image(tmp_path / "elsewhere" / "y.png", seed=1)
    (root / "train" / "a" / "MRN8").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    [skipped] = load_dataset(root, val_fraction=0, splits=("train",)).skipped
    assert main(["locate", str(root), skipped["file"]]) == 0
    assert capsys.readouterr().out.split("\t")[1].strip() == "train/a/MRN8"
