import importlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dataloader
import runs
import runs.checks
from common import InvalidInput
from runs import resolve_data_dir, warm_up
from tests.trainer.conftest import grey_folder


def test_relative_data_dir_resolves_under_data_root(demo_data, data_root):
    assert resolve_data_dir("demo", data_root, confine=True) == demo_data.resolve()


def test_dotdot_out_of_data_root_is_refused(data_root, demo_data):
    with pytest.raises(InvalidInput, match="outside DATA_DIR"):
        resolve_data_dir(f"demo/../../{data_root.name}/../", data_root, confine=True)


def test_symlink_out_of_data_root_is_refused(data_root, tmp_path):
    link = data_root / "escape"
    link.symlink_to(tmp_path, target_is_directory=True)
    try:
        with pytest.raises(InvalidInput, match="outside DATA_DIR"):
            resolve_data_dir("escape", data_root, confine=True)
    finally:
        link.unlink()


def test_a_service_s_data_dir_through_proc_is_refused_without_its_target(data_root):
    with pytest.raises(InvalidInput, match="outside DATA_DIR") as caught:
        resolve_data_dir("/proc/self/cwd", data_root, confine=True)
    assert str(Path.cwd()) not in str(caught.value)


def test_a_service_does_not_expand_a_home_folder_in_data_dir(data_root):
    with pytest.raises(InvalidInput, match="does not expand") as caught:
        resolve_data_dir("~daemon", data_root, confine=True)
    assert "/usr/sbin" not in str(caught.value)


def test_a_long_data_dir_that_does_not_exist_is_echoed_cut(data_root):
    name = "/".join(["a" * 200] * 4)  # 803 characters
    with pytest.raises(InvalidInput, match="does not exist") as refused:
        resolve_data_dir(name, data_root, confine=True)
    assert len(str(refused.value)) < 400


def test_the_command_line_still_expands_a_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir("~", None) == tmp_path.resolve()


@pytest.mark.parametrize(
    ("uri", "store"),
    [
        ("sqlite:///mlflow.db", "sqlalchemy_store"),
        ("postgresql+psycopg2://db/mlflow", "sqlalchemy_store"),
        ("http://mlflow:5000", "rest_store"),
    ],
)
def test_warm_up_imports_the_uris_store_and_the_checks_hold_the_data_loader(
    monkeypatch, uri, store
):
    imported = []
    monkeypatch.setattr(importlib, "import_module", imported.append)
    warm_up(uri)
    assert imported == [f"mlflow.store.tracking.{store}"]
    # The data loader is imported with the checks, not by the first request that needs it.
    assert runs.checks.inspect_data is dataloader.inspect_data


def _grey_model() -> runs.Preprocessing:
    return runs.Preprocessing(
        image_size=(16, 16), channels=1, class_names=["a", "b"], mean=[0.5], std=[0.25]
    )


def test_a_colour_file_among_grey_ones_is_converted_for_a_grey_model(tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    colour = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(colour).save(data / "test" / "a" / "0000-colour.png")  # sorted first
    ds = runs.load_test_split(data, _grey_model())
    assert ds.test.images.shape == (5, 16, 16, 1)


def _store_as_rgb(data, tint: bool) -> None:
    """The test split's grey PNGs stored as RGB: grey still, or (``tint``) in colour."""
    for path in (data / "test").rglob("*.png"):
        grey = Image.open(path).convert("L")
        bands = (grey, grey.point(lambda v: 255 - v), grey) if tint else (grey, grey, grey)
        Image.merge("RGB", bands).save(path)


def test_one_thumbnail_in_the_test_split_is_skipped_not_a_refusal_of_the_data(tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(data / "test" / "a" / "0000-icon.png")
    ds = runs.load_test_split(data, _grey_model())  # 3×3 is over 4× smaller than 16×16
    assert len(ds.test.labels) == 4
    [skipped] = ds.skipped
    assert skipped["file"] == "test/a/0000-icon.png"
    assert skipped["reason"] == (
        "does not fit: 3×3 px is more than 4× smaller than the 16×16 it would be resized to (its "
        "pixels would be invented)"
    )


def test_a_strip_in_the_test_split_is_skipped_as_too_far_out_of_shape(tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    Image.fromarray(np.zeros((16, 80), np.uint8)).save(data / "test" / "a" / "0000-strip.png")
    [skipped] = runs.load_test_split(data, _grey_model()).skipped
    assert skipped["reason"].startswith("does not fit: 16×80 px would be squashed 5.0× against")


@pytest.mark.parametrize("channels", [1, 3])
def test_grey_scans_stored_as_rgb_fit_a_grey_model_and_an_rgb_one(tmp_path, channels):
    data = grey_folder(tmp_path / "data", (16, 16))
    _store_as_rgb(data, tint=False)
    model = _grey_model().model_copy(update={"channels": channels})
    assert runs.load_test_split(data, model).test.images.shape == (4, 16, 16, channels)


def test_only_colour_files_for_a_grey_model_are_refused(tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    _store_as_rgb(data, tint=True)
    with pytest.raises(InvalidInput, match=r"channels: the data has 3 \(RGB\), the model takes 1"):
        runs.check_compatible(data, _grey_model())


def test_a_test_class_folder_in_another_unicode_form_fits_the_model(tmp_path):
    data = grey_folder(tmp_path / "data", (16, 16))
    nfc, nfd = "b\u00e9nin", "be\u0301nin"
    (data / "test" / "a").rename(data / "test" / nfd)
    model = _grey_model().model_copy(update={"class_names": [nfc, "b"]})
    ds = runs.load_test_split(data, model)
    assert sorted(ds.test.labels.tolist()) == [0, 0, 1, 1]


def test_a_test_class_folder_in_another_letter_case_fits_the_model(tmp_path):
    """As the trainer takes test/Malignant for train's malignant (``dataloader.class_key``)."""
    data = grey_folder(tmp_path / "data", (16, 16))
    (data / "test" / "a").rename(data / "test" / "A")
    assert runs.check_compatible(data, _grey_model())["n_classes"] == 2
    assert sorted(runs.load_test_split(data, _grey_model()).test.labels.tolist()) == [0, 0, 1, 1]


def test_data_whose_version_cannot_be_read_is_never_the_same_version(tmp_path, monkeypatch):
    import dataloader.inspect

    data = grey_folder(tmp_path / "data", (16, 16))
    assert (
        runs.check_compatible(data, _grey_model())["version"]
        == (runs.check_compatible(data, _grey_model())["version"])
    )

    def unreadable(path, split):
        raise PermissionError(13, "Permission denied", str(path / split / "a" / "patient-1"))

    monkeypatch.setattr(dataloader.inspect, "_signature", unreadable)
    first = runs.check_compatible(data, _grey_model())["version"]
    assert first != runs.check_compatible(data, _grey_model())["version"]  # no result reused


def _ct_and_mr(root: Path) -> Path:
    """pydicom's CT_small.dcm (class ct) and MR_small.dcm (class mr), one test file each."""
    from tests.dataloader.conftest import write_dicom

    for cls, source in (("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")):
        write_dicom(root / "test" / cls / "0.dcm", source, patient=cls)
    return root


def _pp(modalities: list[str] | None) -> runs.Preprocessing:
    return runs.Preprocessing(
        image_size=(32, 32), channels=1, class_names=["ct", "mr"], mean=[0.5], std=[0.25],
        modalities=modalities,
    )  # fmt: skip


def test_test_dicom_files_of_another_modality_than_the_model_s_are_refused(tmp_path):
    """The served model refuses them: an evaluation on them would describe answers never given."""
    data = _ct_and_mr(tmp_path / "data")
    with pytest.raises(InvalidInput, match=r"Modality CT, MR, and the model was trained on US"):
        runs.load_test_split(data, _pp(["US"]))


def test_test_dicom_files_of_another_modality_are_refused_at_submission(tmp_path):
    """From the headers a submission reads (``data_inputs``), not by a job failing later."""
    data = _ct_and_mr(tmp_path / "data")
    with pytest.raises(InvalidInput, match=r"Modality CT, MR, and the model was trained on US"):
        runs.data_inputs(data, _pp(["US"]))
    assert runs.data_inputs(data, _pp(["CT", "MR"]))["data_dir"] == str(data)


def test_test_dicom_files_of_the_model_s_modalities_or_of_a_model_without_any_are_read(tmp_path):
    data = _ct_and_mr(tmp_path / "data")
    for modalities in (["CT", "MR"], None):
        assert len(runs.load_test_split(data, _pp(modalities)).test.labels) == 2


def test_evaluating_a_trainer_run_stopped_before_its_model_says_to_resume_it(mlflow_server):
    import uuid

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"stopped-{uuid.uuid4().hex}")
    run_id = client.create_run(experiment_id, tags={"pipeline.stage": "training"}).info.run_id
    client.set_terminated(run_id, status="KILLED")  # as the trainer's stop before its model
    with pytest.raises(InvalidInput, match=r"stopped \(KILLED\) before its model was logged"):
        runs.checks.check_model(client, run_id)


def test_a_test_split_added_after_training_without_one_is_not_the_runs_own():
    tags = {runs.contract.TEST_DATA_TAG: runs.contract.NO_TEST_DATA}
    said = runs.checks.test_split_change(tags, Path("/data/derm"), "ab" * 32)
    assert said.startswith("the run's trainer read no test split in /data/derm")
    assert "make sure none of them was trained on" in said
    assert runs.checks.test_split_change({}, Path("/data/derm"), "ab" * 32) is None  # before


def test_data_dir_named_as_data_dir_itself_is_told_paths_are_below_it(tmp_path):
    """A new user sends "data" to a service whose DATA_DIR is the data folder."""
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(InvalidInput, match=r'relative to DATA_DIR: "\." names DATA_DIR itself'):
        resolve_data_dir("data", root, confine=True)
    with pytest.raises(InvalidInput) as other:
        resolve_data_dir("nowhere", root, confine=True)
    assert "names DATA_DIR itself" not in str(other.value)
