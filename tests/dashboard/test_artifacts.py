import io

import numpy as np
import pydicom
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from pydicom.data import get_testdata_file

from dashboard.artifacts import array_summary, dicom_image, human_size, image_size, kind
from dashboard.reads import PREVIEW_BYTES
from runs import ImageDecodeError
from tests.dashboard.conftest import open_page

CT = get_testdata_file("CT_small.dcm", download=False)  # shipped inside pydicom


@pytest.fixture(scope="module")
def viewer_run(mlflow_server, dashboard_runs, tmp_path_factory) -> str:
    """A run holding a CSV larger than the preview limit, a DICOM file and a .npy array."""
    folder = tmp_path_factory.mktemp("viewer")
    rows = PREVIEW_BYTES // 8  # about 15 bytes a line: over the preview limit
    with open(folder / "big.csv", "w") as f:
        f.write("index,value\n")
        f.writelines(f"{i},{i * 0.5:.3f}\n" for i in range(rows))
    np.save(folder / "weights.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    client = MlflowClient(mlflow_server)
    run = client.create_run(dashboard_runs["experiment"], run_name="viewers")
    client.log_artifact(run.info.run_id, str(folder / "big.csv"), "tables")
    client.log_artifact(run.info.run_id, str(folder / "weights.npy"))
    client.log_artifact(run.info.run_id, CT, "scans")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _view(dashboard_runs, run_id, path):
    return open_page(run_id, "Artifacts", artifact_path=path,
                     experiment_id=dashboard_runs["experiment"])  # fmt: skip


def test_large_csv_is_previewed_not_loaded_whole(page_env, dashboard_runs, viewer_run):
    at = _view(dashboard_runs, viewer_run, "tables/big.csv")
    assert not at.exception
    assert any("Large file" in c.value for c in at.caption)
    preview = at.dataframe[-1].value
    assert 1000 < len(preview) < PREVIEW_BYTES // 8
    assert list(preview.columns) == ["index", "value"]


def test_dicom_is_rendered_with_its_header(page_env, dashboard_runs, viewer_run):
    at = _view(dashboard_runs, viewer_run, "scans/CT_small.dcm")
    assert not at.exception
    [alt] = [img.alt for element in at.get("image") for img in element.proto.imgs]
    assert alt.startswith("CT DICOM image scans/CT_small.dcm, 128×128 pixels")
    assert '"Modality": "CT"' in at.json[0].value


def test_npy_shows_shape_and_summary(page_env, dashboard_runs, viewer_run):
    at = _view(dashboard_runs, viewer_run, "weights.npy")
    row = at.dataframe[-1].value.iloc[0]
    assert row["shape"] == "3×4" and row["max"] == 11


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("evaluation/roc.PNG", "image"),
        ("model/MLmodel", "text"),
        ("a/b.tsv", "table"),
        ("x.npz", "npz"),
        ("scan.dcm", "dicom"),
        ("weights.bin", "binary"),
    ],
)
def test_kind_by_name(path, expected):
    assert kind(path) == expected


def test_human_size():
    assert human_size(512) == "512 B"
    assert human_size(3 * 1024 * 1024) == "3.0 MB"


def test_array_summary_of_non_numeric_arrays_has_no_statistics():
    table = array_summary({"names": np.array(["a", "b"]), "x": np.ones((2, 2))})
    assert np.isnan(table.loc[0, "mean"]) and table.loc[1, "mean"] == 1.0


def test_image_size_reads_the_header_and_gives_none_for_other_bytes():
    buffer = io.BytesIO()
    Image.new("L", (40, 30)).save(buffer, format="PNG")
    assert image_size(buffer.getvalue()) == (40, 30)
    assert image_size(b"not an image") is None


def test_dicom_image_is_scaled_to_uint8():
    with open(CT, "rb") as f:
        image, fields = dicom_image(f.read())
    assert image.dtype == np.uint8 and image.max() == 255 and image.min() == 0
    assert fields["Modality"] == "CT"


def test_the_dicom_viewer_shows_nothing_that_identifies_the_patient():
    with open(CT, "rb") as f:
        raw = f.read()
    _, fields = dicom_image(raw)
    assert not {"PatientID", "PatientName", "PatientBirthDate", "StudyDate"} & set(fields)
    assert fields["Rows"] == "128"


def test_the_dicom_viewer_shows_monochrome1_as_the_models_see_it_bright_for_high_values():
    ds = pydicom.dcmread(CT)
    ds.PhotometricInterpretation = "MONOCHROME1"  # white = low values, as in many radiographs
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with open(CT, "rb") as f:
        plain, _ = dicom_image(f.read())
    inverted, fields = dicom_image(buffer.getvalue())
    assert fields["PhotometricInterpretation"] == "MONOCHROME1"
    assert np.array_equal(inverted.astype(int), 255 - plain.astype(int))


def test_a_deflated_dicom_is_refused_before_it_is_inflated():
    ds = pydicom.dcmread(CT)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(ImageDecodeError, match="deflated DICOM"):
        dicom_image(buffer.getvalue())


def test_corrupt_dicom_raises_for_the_tab_to_report():
    with pytest.raises(ImageDecodeError, match="not a PNG, JPEG or DICOM image"):
        dicom_image(io.BytesIO(b"not a dicom").getvalue())


def test_an_image_under_a_dicom_name_is_refused_for_the_tab_to_warn():
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    with pytest.raises(ImageDecodeError, match="not a DICOM file"):
        dicom_image(buffer.getvalue())
