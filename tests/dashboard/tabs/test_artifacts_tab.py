from tests.dashboard.conftest import open_page


def _open(runs, role, **state):
    return open_page(runs[role], "Artifacts", experiment_id=runs["experiment"], **state)


def test_lists_root_and_folders_with_size_and_type(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    assert not at.exception
    root = at.dataframe[0].value.set_index("name")
    assert root.loc["evaluation/", "type"] == "folder"
    assert root.loc["preprocessing.json", "type"] == "json"
    assert root.loc["preprocessing.json", "size"].endswith("B")
    labels = [e.label for e in at.expander]
    assert f"{dashboard_runs['evaluation']}/misclassified/" in labels
    assert f"{dashboard_runs['explanation']}/panels/" in labels


def test_json_is_formatted_and_downloadable(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline", artifact_path="preprocessing.json")
    assert at.json[0].value
    assert '"channels": 3' in at.json[0].value
    assert at.get("download_button")


def test_csv_is_a_table(page_env, dashboard_runs):
    at = _open(
        dashboard_runs, "pipeline", artifact_path=f"{dashboard_runs['evaluation']}/predictions.csv"
    )
    table = at.dataframe[-1].value
    assert {"true_label", "predicted_label"} <= set(table.columns)
    assert len(table) == 12


def test_npz_shows_arrays_with_shapes(page_env, dashboard_runs):
    at = _open(
        dashboard_runs, "pipeline", artifact_path=f"{dashboard_runs['explanation']}/gradcam.npz"
    )
    table = at.dataframe[-1].value.set_index("array")
    assert table.loc["values", "shape"] == "2×1×32×32"
    assert "mean" in table.columns


def test_image_is_shown(page_env, dashboard_runs):
    at = _open(
        dashboard_runs,
        "pipeline",
        artifact_path=f"{dashboard_runs['evaluation']}/confusion_matrix.png",
    )
    assert at.get("image")


def test_text_is_shown_as_code(page_env, dashboard_runs):
    at = _open(dashboard_runs, "unicode", artifact_path="notes/readme.txt")
    assert at.code[0].value.strip() == "hello ✓"


def test_run_without_artifacts_says_so(page_env, dashboard_runs):
    at = _open(dashboard_runs, "failed")
    assert any("no artifacts" in i.value for i in at.info)
