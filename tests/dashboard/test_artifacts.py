import io

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from pydicom.data import get_testdata_file

from dashboard.artifacts import array_summary, dicom_image, human_size, kind
from dashboard.reads import PREVIEW_BYTES
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
    assert at.get("image")
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


def test_corrupt_dicom_raises_for_the_tab_to_report():
    with pytest.raises(Exception, match=r"(?i)dicom|preamble|read"):
        dicom_image(io.BytesIO(b"not a dicom").getvalue())
