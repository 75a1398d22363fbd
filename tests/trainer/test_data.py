"""The training data and the test split's audit (``trainer.data``)."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image

from common import InvalidInput
from dataloader import load_dataset, synthesize
from tests.dataloader.conftest import write_dicom
from tests.trainer.conftest import grey_folder
from trainer import distributed, get_args_parser, train
from trainer.data import load, training_set
from trainer.data_warnings import overlap_tag, warn_data
from trainer.mlflow_run import logged_data_dir


def test_a_colour_image_in_test_leaves_the_model_grey(trainer_argv, mlflow_server, tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    colour = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(colour).save(data / "test" / "a" / "colour.png")
    run_id = train(trainer_argv("--epochs", "1", data=data))
    client = mlflow.MlflowClient(mlflow_server)
    local = client.download_artifacts(run_id, "dataset_stats.json", str(tmp_path))
    stats = json.loads(Path(local).read_text())
    assert stats["channels"] == 1 and len(stats["mean"]) == 1
    assert stats["counts"]["test"]["total"] == 5  # the audit still counted the colour image


def test_a_test_split_that_cannot_be_audited_is_a_console_warning(trainer_argv, tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (16, 16))
    (data / "test" / "c").mkdir()  # a class train lacks: the audit's load refuses it
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(data / "test" / "c" / "0.png")
    train(trainer_argv("--epochs", "1", data=data))
    err = capsys.readouterr().err
    assert "warning: the test split was not checked for patients or duplicate images" in err
    assert "test/'c' is a class" in err and "fix it before evaluating" in err


def test_the_data_dir_is_logged_relative_to_data_dir_when_under_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "breast").mkdir(parents=True)
    # `--data-dir data` with DATA_DIR `data`: a service reads "." under its own DATA_DIR, where
    # "data" would mean data/data.
    assert logged_data_dir("data", "data") == "."
    assert logged_data_dir("data/breast", tmp_path / "data") == "breast"


def test_data_outside_data_dir_is_logged_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    assert logged_data_dir("elsewhere", "data") == str(tmp_path / "elsewhere")


def test_manifest_rows_that_match_no_image_are_a_console_warning(tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (16, 16))
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    rows = [f"{f},p{i}\n" for i, f in enumerate(files)] + ["train/a/gone.png,p0\n"]
    (data / "groups.csv").write_text("file,group\n" + "".join(rows))
    warn_data(load_dataset(data, val_fraction=0).stats)
    err = capsys.readouterr().err
    assert f"warning: the group manifest {data / 'groups.csv'}: 1 row(s) of it match no " in err
    assert "match no image (first: train/a/gone.png); give each image a row 'file,group'" in err


def test_a_class_folder_linked_to_its_split_is_a_label_conflict_warning(tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (16, 16))
    (data / "train" / "all").symlink_to(data / "train")
    warn_data(load_dataset(data, val_fraction=0).stats)
    err = capsys.readouterr().err
    assert "warning: 20 image(s) appear under two or more classes (identical pixels, e.g. " in err
    assert "train/a/0.png (a) = train/all/a/0.png (all)" in err


def test_near_copies_under_two_classes_are_a_label_conflict_warning(tmp_path, capsys):
    tiny_demo = synthesize(tmp_path / "demo", train_per_class=6, test_per_class=3, size=32, seed=1)
    pixels = np.asarray(Image.open(tiny_demo / "train/melanoma/0002.png"), dtype=float)
    noisy = pixels + 8 + np.random.default_rng(0).normal(0, 2, pixels.shape)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(tiny_demo / "test/nevus/x.png")
    warn_data(load_dataset(tiny_demo, val_fraction=0).stats)
    err = capsys.readouterr().err
    assert (
        "warning: 1 group(s) of near-identical images (the same frame exported twice, by the "
        "near-duplicate test) carry different classes, e.g. train/melanoma/0002.png (melanoma) "
        "≈ test/nevus/x.png (nevus): check their labels"
    ) in err


@pytest.mark.parametrize(
    "name", ["predicted_class", "decision", "ood_score", "out_of_distribution", "input_note"]
)
def test_a_class_named_as_an_output_column_is_refused(tmp_path, name):
    data = grey_folder(tmp_path / "data", (16, 16))
    for split in ("train", "test"):
        (data / split / "b").rename(data / split / name)
    with pytest.raises(InvalidInput, match=rf"the class '{name}' in .* has the name of a column"):
        training_set(load_dataset(data))


def _val_without_b(tmp_path: Path):
    """A data set whose val/ folder holds images of class a only."""
    data = grey_folder(tmp_path / "data", (16, 16))
    (data / "val" / "a").mkdir(parents=True)
    for png in sorted((data / "train" / "a").glob("*.png"))[:3]:
        png.rename(data / "val" / "a" / png.name)
    return load_dataset(data)


def test_a_class_missing_from_validation_is_a_console_warning(tmp_path, capsys):
    warn_data(_val_without_b(tmp_path).stats)
    err = capsys.readouterr().err
    assert "warning: the validation split has no image of 'b': validation AUC is n/a" in err


def _trainer_stats(data: Path) -> dict:
    """The statistics the trainer reads of ``data`` (its own load, with the test audit)."""
    args = get_args_parser().parse_args(["--data-dir", str(data)])
    return load(args, distributed.from_environment()).stats


def test_a_test_split_without_a_class_is_a_console_warning(tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (16, 16))
    shutil.rmtree(data / "test" / "b")
    warn_data(_trainer_stats(data))
    err = capsys.readouterr().err
    assert "warning: the test split has no image of 'b': the evaluator's figures" in err


def test_no_test_split_is_a_console_warning(tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (16, 16))
    shutil.rmtree(data / "test")
    warn_data(_trainer_stats(data))
    err = capsys.readouterr().err
    assert f"warning: {data} has no test split: the evaluator needs one (test/<class>/)" in err


def test_the_test_splits_hash_is_the_one_an_evaluation_of_it_finds(tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    args = get_args_parser().parse_args(["--data-dir", str(data)])
    found = load(args, distributed.from_environment()).split_hashes
    assert found["test"] == load_dataset(data, splits=["test"]).content_hash
    shutil.rmtree(data / "test")
    assert "test" not in load(args, distributed.from_environment()).split_hashes  # tag "none"


def test_a_test_split_that_was_not_audited_is_not_tagged_as_sharing_nothing(tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    assert overlap_tag(_trainer_stats(data)) == '{"exact": 0, "near": 0, "groups": 0}'
    (data / "test" / "c").mkdir()  # a class train lacks: the audit's load refuses it
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(data / "test" / "c" / "0.png")
    assert overlap_tag(_trainer_stats(data)) == '{"audited": false}'  # unknown, not clean


def test_a_class_carved_whole_into_validation_is_named_with_why(tmp_path):
    dataset = load_dataset(grey_folder(tmp_path / "data", (16, 16)))
    is_b = dataset.train.labels == 1
    moved = replace(  # as when b's images are all copies of one image of a, kept together
        dataset,
        train=dataset.train.subset(np.flatnonzero(~is_b)),
        val=dataset.train.subset(np.flatnonzero(is_b)),
    )
    with pytest.raises(InvalidInput, match=r"every training image of 'b' .* went to validation"):
        training_set(moved)


def _patients_of(data: Path, n: int) -> None:
    """A groups.csv giving the training images ``n`` patients (image ``i`` of each class to
    patient ``i % n``) and every test image its own."""
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    rows = [
        f"{f},{'p' + str(int(Path(f).stem) % n) if f.startswith('train/') else f}\n" for f in files
    ]
    (data / "groups.csv").write_text("file,group\n" + "".join(rows))


def test_a_validation_carve_far_from_the_fraction_is_a_console_warning(tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (16, 16))
    _patients_of(data, 2)  # two patients: any carve by patient takes half of train
    warn_data(_trainer_stats(data))
    err = capsys.readouterr().err
    assert "warning: the validation split carved from train took 5 of 10 'a' images (50%)" in err
    assert "for a fraction of 0.1: the images of a patient (group) stay together" in err


def test_a_class_of_one_patient_missing_from_validation_is_said_to_be_one_patient(tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (16, 16))
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    rows = [f"{f},{'pb' if f.startswith('train/b/') else f}\n" for f in files]
    (data / "groups.csv").write_text("file,group\n" + "".join(rows))
    warn_data(_trainer_stats(data))
    err = capsys.readouterr().err
    assert "the validation split has no image of 'b'" in err
    assert "all training images of each belong to one patient (group)" in err
    assert "a larger --val-fraction" not in err  # no fraction can hold out part of a patient


def test_images_without_a_patient_beside_others_with_one_are_a_console_warning(tmp_path, capsys):
    root = tmp_path / "dicom"
    for split, cls, source, patient in (
        ("train", "ct", "CT_small.dcm", "anna"),
        ("train", "mr", "MR_small.dcm", ""),  # an empty PatientID: no patient
        ("test", "ct", "CT_small.dcm", "carl"),
        ("test", "mr", "MR_small.dcm", ""),
    ):
        write_dicom(root / split / cls / f"{split}.dcm", source, patient=patient)
    warn_data(load_dataset(root, image_size=32, val_fraction=0).stats)
    err = capsys.readouterr().err
    assert (
        "warning: 2 image(s) have no patient (no DICOM PatientID, or an empty one: train 1, "
        "test 1) and count as a patient each, while the others have one"
    ) in err


def test_a_class_with_few_training_images_is_a_console_warning(tmp_path, capsys):
    """Three thumbnails in a stray folder made a class of three images without a word."""
    data = grey_folder(tmp_path / "data", (16, 16))
    (data / "train" / "thumbs").mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
        Image.fromarray(pixels).save(data / "train" / "thumbs" / f"{i}.png")
    warn_data(load_dataset(data, val_fraction=0).stats)
    err = capsys.readouterr().err
    assert "warning: the training split has fewer than 10 images of 'thumbs' (3): " in err
    assert "'a'" not in err.split("fewer than 10 images of")[1].split(":")[0]


def test_8_bit_and_16_bit_images_mixed_are_a_console_warning(tmp_path, capsys):
    data = grey_folder(tmp_path / "data", (16, 16))
    deep = np.random.default_rng(0).integers(0, 65535, (16, 16)).astype(np.uint16)
    Image.fromarray(deep).save(data / "train" / "a" / "deep.png")
    warn_data(load_dataset(data, val_fraction=0).stats)
    err = capsys.readouterr().err
    assert "warning: 8-bit and 16-bit PNG/JPEG images are mixed (train: " in err


def _load_with(data: Path, val_fraction: str):
    args = get_args_parser().parse_args(["--data-dir", str(data), "--val-fraction", val_fraction])
    return load(args, distributed.from_environment())


def test_a_val_fraction_that_rounds_to_no_image_says_so_with_the_fraction_that_would_do(tmp_path):
    """10 images per class at 0.04 was told to use --val-fraction above 0, as if it were 0."""
    data = grey_folder(tmp_path / "data", (16, 16))
    with pytest.raises(InvalidInput) as caught:
        _load_with(data, "0.04")
    assert (
        "gives no validation images: --val-fraction 0.04 of the 10 training images per class "
        "rounds to none; use a --val-fraction of at least 0.05, more training images, or add "
        "a val/ folder"
    ) in str(caught.value)


def test_a_val_fraction_of_0_without_val_is_told_to_be_above_0(tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    with pytest.raises(InvalidInput, match=r"add a val/ folder or use --val-fraction above 0"):
        training_set(_load_with(data, "0"))


def test_training_images_all_copies_of_one_are_said_to_be_so(tmp_path):
    """A failed export writes one picture again and again: no image can be held out without
    its copies, which is not a matter of --val-fraction."""
    data = grey_folder(tmp_path / "data", (16, 16))
    for image in (data / "train").rglob("*.png"):
        Image.new("L", (16, 16), 0).save(image)  # every training image black
    with pytest.raises(InvalidInput, match=r"carving --val-fraction 0.1 from train held out none"):
        _load_with(data, "0.1")
