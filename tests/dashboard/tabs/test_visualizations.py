import pandas as pd

from common import contrast_ratio, hex_rgb
from dashboard.tabs.visualizations import COLOURS, embedding_chart
from tests.dashboard.charts import chart_data, charts
from tests.dashboard.conftest import open_page, page_text


def _open(runs, role):
    return open_page(runs[role], "Visualizations", experiment_id=runs["experiment"])


def test_feature_map_is_read_from_the_explainers_embedding(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    assert not at.exception
    assert not [b for b in at.button if "Compute" in b.label]  # the explainer computed it
    [frame] = chart_data(at)
    assert {"true", "predicted", "outcome"} <= set(frame.columns)
    assert set(frame["true"]) == {"keratosis", "melanoma", "nevus"}  # stratified per class
    at.radio(key="tsne_colour").set_value("outcome").run()
    [spec] = charts(at)
    assert "outcome" in str(spec["encoding"]["color"])


def test_activation_maps_are_the_explainers_grad_cam(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    assert any("Grad-CAM" in h.value for h in at.subheader)
    assert len(at.get("image")) == 1  # the explainer's gradcam_overlays.png


def test_unexplained_run_says_how_to_get_the_maps(page_env, dashboard_runs):
    at = _open(dashboard_runs, "bare")
    assert not at.exception
    assert "python -m explainer" in at.info[0].value
    assert not charts(at)


def test_run_that_cannot_be_explained_has_no_maps_and_says_why(page_env, dashboard_runs):
    at = _open(dashboard_runs, "failed")
    assert not at.exception
    text = page_text(at)
    assert "No explanation can be made for this run" in text
    assert "press" not in text.lower()


def test_feature_map_and_activation_maps_have_text_alternatives(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    [chart] = at.get("vega_lite_chart")
    assert "map of the model's features of" in chart.proto.alt
    assert "keratosis" in chart.proto.alt and "misclassified" in chart.proto.alt
    [image] = at.get("image")
    assert image.proto.imgs[0].alt.startswith("Grad-CAM overlays of the predicted class")


def _points() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [0.0, 1.0, 2.0, 3.0],
            "y": [0.0, 1.0, 0.0, 1.0],
            "true": ["keratosis", "melanoma", "nevus", "nevus"],
            "predicted": ["keratosis", "melanoma", "nevus", "melanoma"],
            "outcome": ["correct", "correct", "correct", "misclassified"],
            "confidence": [0.9, 0.8, 0.7, 0.6],
            "test image": [1, 2, 3, 4],
            "file": ["–"] * 4,
        }
    )


def test_map_draws_a_mark_that_shows_the_outcome_as_a_shape():
    spec = embedding_chart(_points(), "true").to_dict()
    assert spec["mark"]["type"] == "point" and spec["mark"]["filled"] is True
    shapes = spec["encoding"]["shape"]["scale"]["range"]
    assert len(set(shapes)) == 2


def test_map_colours_contrast_with_white_and_differ_in_lightness():
    for colour in COLOURS:
        colours = embedding_chart(_points(), colour).to_dict()["encoding"]["color"]["scale"]
        greys = [hex_rgb(c) for c in colours["range"]]
        assert all(contrast_ratio(g, (1, 1, 1)) >= 3 for g in greys), (colour, colours)
        pairs = [(a, b) for i, a in enumerate(greys) for b in greys[i + 1 :]]
        assert all(contrast_ratio(a, b) >= 1.3 for a, b in pairs), (colour, colours)


def test_misclassified_points_of_the_map_are_listed_in_a_table(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    [frame] = chart_data(at)
    [table] = [f.value for f in at.dataframe if "Predicted class" in f.value.columns]
    assert len(table) == (frame["outcome"] == "misclassified").sum() > 0
    assert (table["True class"] != table["Predicted class"]).all()


def test_the_marks_of_misclassified_samples_are_said_in_body_text(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    assert any("misclassified: ✗ and in red; correct: ✓" in m.value for m in at.markdown)
