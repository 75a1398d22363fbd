"""The modalities a model records: its DICOM training files', or the declared ``--modality``;
a declaration the files contradict is refused at training start."""

from pathlib import Path

import pytest

from common import InvalidInput
from dataloader import load_dataset
from runs import model_info
from tests.dataloader.conftest import write_dicom
from tests.trainer.conftest import grey_folder
from trainer import get_args_parser, train
from trainer.data import modality_warning, training_set


@pytest.fixture
def dicom_data(tmp_path) -> Path:
    """pydicom's CT_small.dcm (class ct) and MR_small.dcm (class mr): 3 training, 1 validation
    and 1 test file per class, a patient each."""
    root = tmp_path / "dicom"
    for split, n in (("train", 3), ("val", 1), ("test", 1)):
        for cls, source in (("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")):
            for i in range(n):
                write_dicom(root / split / cls / f"{i}.dcm", source, patient=f"{split}{cls}{i}")
    return root


def _dicom_set(root: Path):
    return load_dataset(root, image_size=32, splits=("train", "val"))


def test_the_model_records_the_modalities_of_its_dicom_training_files(dicom_data):
    _, _, preprocessing = training_set(_dicom_set(dicom_data))
    assert preprocessing.modalities == ["CT", "MR"]


def test_the_logged_model_carries_its_training_files_modalities(trainer_argv, dicom_data):
    run_id = train(trainer_argv("--image-size", "32", "--epochs", "1", data=dicom_data))
    assert model_info(f"runs:/{run_id}/model").metadata["modalities"] == ["CT", "MR"]


def test_a_declared_modality_the_dicom_files_contradict_is_refused_in_one_line(
    trainer_argv, dicom_data
):
    with pytest.raises(InvalidInput) as refused:
        train(trainer_argv("--image-size", "32", "--modality", "US", data=dicom_data))
    message = str(refused.value)
    assert message.startswith("--modality US, but training images in ")
    # every training image is DICOM: the advice is their codes, not a union refused next
    assert "are DICOM files of Modality CT, MR: declare CT,MR or leave --modality out" in message
    assert "\n" not in message


def test_declaring_a_modality_that_no_dicom_training_file_has_is_refused(dicom_data):
    with pytest.raises(InvalidInput, match=r"of Modality CT, MR and none is US: the model would"):
        training_set(_dicom_set(dicom_data), "CT,MR,US")


def test_a_declared_modality_that_the_dicom_files_agree_with_is_recorded(dicom_data):
    _, _, preprocessing = training_set(_dicom_set(dicom_data), "CT,MR")
    assert preprocessing.modalities == ["CT", "MR"]


def test_png_training_images_take_the_declared_modality(tmp_path):
    dataset = load_dataset(grey_folder(tmp_path / "png", (16, 16)), splits=("train", "val"))
    assert training_set(dataset, "XC")[2].modalities == ["XC"]


def test_png_training_images_without_a_declared_modality_record_none(tmp_path):
    dataset = load_dataset(grey_folder(tmp_path / "png", (16, 16)), splits=("train", "val"))
    assert training_set(dataset)[2].modalities is None


def test_a_model_that_will_record_no_modality_is_a_warning(tmp_path):
    dataset = load_dataset(grey_folder(tmp_path / "png", (16, 16)), splits=("train", "val"))
    warning = modality_warning(dataset.stats, None)
    assert warning.startswith("no training image is a DICOM file naming its Modality and --mod")


def test_a_declared_modality_is_no_warning(tmp_path):
    dataset = load_dataset(grey_folder(tmp_path / "png", (16, 16)), splits=("train", "val"))
    assert modality_warning(dataset.stats, "XC") is None


def test_declared_codes_become_one_normalised_run_parameter():
    assert get_args_parser().parse_args(["--modality", "us, ct"]).modality == "CT,US"


def test_a_code_that_is_no_dicom_modality_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        get_args_parser().parse_args(["--modality", "UL"])
    assert exit_info.value.code == 2
    assert "UL is not a DICOM Modality code; use codes such as US, CT" in capsys.readouterr().err


def test_declaring_a_code_of_objects_that_are_not_images_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["--modality", "US,SR"])
    assert "SR is the Modality of DICOM objects that are not images" in capsys.readouterr().err


def test_dicom_training_files_without_a_modality_that_the_model_will_refuse_are_a_warning():
    """Declared (or found on other files), the model refuses DICOM files naming no Modality:
    files like these training ones, said before training."""
    stats = {"modalities": {"counts": {"US": 4}, "no_modality": 2, "not_dicom": 0}}
    for declared in (None, "US"):
        warning = modality_warning(stats, declared)
        assert warning.startswith("2 DICOM training file(s) name no Modality, and the model, ")
        assert "recording US, refuses DICOM files without one" in warning


def test_multi_frame_training_files_are_a_warning_that_the_first_frame_is_classified():
    stats = {"modalities": {"counts": {"US": 4}, "no_modality": 0, "not_dicom": 0,
                            "multi_frame": 3}}  # fmt: skip
    warning = modality_warning(stats, "US")
    assert warning.startswith("3 DICOM training or validation file(s) hold several frames (a ")
    assert "it classifies the first frame of the multi-frame files it is sent" in warning
    assert modality_warning({**stats, "modalities": {**stats["modalities"], "multi_frame": 0}},
                            "US") is None  # fmt: skip


def test_a_model_trained_on_cine_loops_records_that_it_takes_them(dicom_data):
    assert training_set(_dicom_set(dicom_data))[2].multi_frame is False
    for split in ("train", "val"):  # a 30-frame ultrasound loop in each
        write_dicom(dicom_data / split / "mr" / "loop.dcm", "examples_ybr_color.dcm",
                    patient=f"{split}-loop")  # fmt: skip
    assert training_set(_dicom_set(dicom_data))[2].multi_frame is True
