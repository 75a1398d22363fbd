from tests.dashboard.conftest import charts, open_page


def test_nothing_of_the_explanations_tab_is_repeated(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Visualizations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.exception
    assert not at.get("image")  # the explainer's panels are on the Explanations tab
    assert not charts(at)


def test_embedding_and_activation_maps_on_demand(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Visualizations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    at.button(key="compute_views").click().run(timeout=300)
    assert not at.exception
    assert not at.error, at.error[0].value
    assert charts(at)
    images = at.get("image")
    assert len(images) == 8  # eight Grad-CAM overlays
    shown = " ".join(str(i.proto) for i in images)
    assert all(f"true {c}" in shown for c in ("keratosis", "melanoma", "nevus"))
    at.radio(key="tsne_colour").set_value("outcome").run()
    assert charts(at)


def test_foreign_run_explains_why_there_is_no_embedding(page_env, dashboard_runs):
    at = open_page(dashboard_runs["sklearn"], "Visualizations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    at.button(key="compute_views").click().run()
    assert not at.exception
    assert "preprocessing.json" in at.warning[0].value
