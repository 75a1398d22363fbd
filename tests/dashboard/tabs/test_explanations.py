from common import CATEGORICAL
from dashboard.tabs.explanations import data_note
from tests.dashboard.charts import chart_of
from tests.dashboard.conftest import open_page, page_text


def test_faithfulness_channels_samples_and_panels(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.exception
    faith = next(f.value for f in at.dataframe if "Method" in f.value.columns).set_index("Method")
    assert {"Grad-CAM", "SHAP"} <= set(faith.index)
    headings = [s.value for s in at.subheader]
    assert "Channel importance" in headings
    assert "Per-sample panels" in headings
    assert any("deletion curve" in h.lower() for h in headings)
    panels = [i for i in at.get("image") if "true " in str(i.proto)]
    assert len(panels) == 2  # one per explained sample, captioned with its classes


def test_faithfulness_of_two_images_says_they_are_too_few_for_an_interval(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    faith = next(f.value for f in at.dataframe if "Method" in f.value.columns)
    scores = faith["Score (higher is better; 95 % CI)"]
    assert not any("95 % CI" in score for score in scores), scores.tolist()
    assert any("2 explained images (too few for an interval" in c.value for c in at.caption)


def test_samples_table_has_human_headers_and_no_none(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    samples = next(f.value for f in at.dataframe if "True class" in f.value.columns)
    assert {"Predicted class", "Confidence", "Outcome"} <= set(samples.columns)
    assert "None" not in samples.astype(str).to_string()
    assert "true_label" not in samples.columns


def test_channels_are_in_rgb_order(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    spec, frame = chart_of(at, "channel")
    assert spec["encoding"]["x"]["sort"] == ["R", "G", "B", "grey"]
    assert list(frame["channel"])[:3] == ["R", "G", "B"]


def test_raw_arrays_on_request(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations", explain_raw=True,
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    shapes = [f.value for f in at.dataframe if "shape" in f.value.columns]
    assert any("2×3×32×32" in set(t["shape"]) for t in shapes)  # SHAP values N×C×H×W


def test_unexplained_run_says_how_to_explain(page_env, dashboard_runs):
    at = open_page(dashboard_runs["bare"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert f"python -m explainer --run-id {dashboard_runs['bare']}" in at.info[0].value


def test_explain_button_with_the_service_down_says_how_to_start_it(page_env, dashboard_runs):
    at = open_page(dashboard_runs["bare"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    at.button(key="job_explain").click().run()
    assert "uvicorn explainer.app:app" in at.error[0].value


def test_run_that_cannot_be_explained_says_why_and_not_to_press_explain(page_env, dashboard_runs):
    at = open_page(dashboard_runs["failed"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.exception
    text = page_text(at)
    assert "No explanation can be made for this run" in text
    assert "press" not in text.lower()
    assert "python -m explainer" not in text


def test_channel_chart_and_panels_have_text_alternatives(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [chart] = [c for c in at.get("vega_lite_chart") if "attribution" in c.proto.alt]
    assert "R " in chart.proto.alt and "%" in chart.proto.alt
    alts = [img.alt for element in at.get("image") for img in element.proto.imgs]
    assert sum(a.startswith("The image, then one overlay per method: ") for a in alts) == 2
    assert all(a for a in alts)


def test_how_the_samples_were_chosen_is_body_text(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert any(m.value.startswith("Chosen across classes") for m in at.markdown)


def test_channel_bars_are_in_colours_that_contrast_with_white(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    spec, _ = chart_of(at, "channel")
    assert spec["encoding"]["color"]["scale"]["range"] == list(CATEGORICAL)


def test_an_explanation_of_the_run_s_own_test_split_carries_no_data_warning(
    page_env, dashboard_runs
):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not [w for w in at.warning if "These explanations" in w.value]


def test_an_explanation_of_other_data_is_said_to_be_of_those_images():
    note = data_note({"source": "/data/site_b", "n_test": 40, "own_data": False})
    assert note.startswith("These explanations are of test images of /data/site\\_b (40 images)")
    assert "not of the run's own data folder" in note


def test_an_explanation_of_a_changed_test_split_says_how_it_changed():
    changed = "its test split has changed since the run was trained (images added)"
    note = data_note({"own_data": False, "data_changed": changed})
    assert (
        note
        == f"These explanations are not of the test split the run was trained beside: {changed}"
    )
    assert data_note({"own_data": True, "data_changed": None}) is None
    assert data_note({}) is None  # an explanation made before index.json said
