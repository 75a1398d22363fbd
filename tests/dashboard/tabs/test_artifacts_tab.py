from dashboard.tabs.artifacts_tab import INDENT
from tests.dashboard.conftest import open_page


def _open(runs, role, **state):
    return open_page(runs[role], "Artifacts", experiment_id=runs["experiment"], **state)


def _tree(at):
    return next(f.value for f in at.dataframe if "type" in f.value.columns)


def test_one_tree_lists_every_file_and_folder_once(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    assert not at.exception
    tree = _tree(at)
    names = [n.replace(INDENT, "  ") for n in tree["name"]]
    assert names.count("▾ evaluation/") == 1
    result = dashboard_runs["evaluation"].split("/")[-1]
    assert f"  ▾ {result}/" in names  # the result folder, one level deeper than evaluation/
    assert "    ▾ misclassified/" in names  # and its subfolder below it
    row = tree.set_index("name").loc["preprocessing.json"]
    assert row["type"] == "json" and row["size"].endswith("B")
    assert not [e for e in at.expander if e.label.endswith("/")]  # no second listing


def test_html_is_rendered_in_a_sandbox_never_as_markup(page_env, dashboard_runs):
    at = _open(dashboard_runs, "sklearn")
    assert not at.selectbox(key="artifact_path").value.endswith(".html")  # not opened first
    html = next(p for p in at.selectbox(key="artifact_path").options if ".html" in p)
    at.selectbox(key="artifact_path").set_value(html.split(" (")[0]).run()
    [frame] = at.get("iframe")
    assert '<iframe sandbox=""' in frame.proto.srcdoc
    assert "default-src &#x27;none&#x27;" in frame.proto.srcdoc
    assert not any("<div" in c.value or "<style" in c.value for c in at.code)


def test_model_caption_is_true_for_the_run(page_env, dashboard_runs):
    pipeline = _open(dashboard_runs, "pipeline")
    assert any("Models of this run" in c.value for c in pipeline.caption)
    failed = _open(dashboard_runs, "failed")
    assert any("logged no MLflow model" in c.value for c in failed.caption)
    assert not any("LoggedModel" in c.value for c in failed.caption)


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
