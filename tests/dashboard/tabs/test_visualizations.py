from tests.dashboard.conftest import chart_data, charts, open_page, page_text


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
