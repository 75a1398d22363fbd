from tests.dashboard.conftest import open_page


def test_faithfulness_channels_samples_and_panels(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Explanations",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.exception
    faith = at.dataframe[0].value.set_index("method")
    assert {"gradcam", "shap"} <= set(faith.index)
    headings = [s.value for s in at.subheader]
    assert "Channel importance" in headings
    assert "SHAP" in headings
    assert any(h.startswith("Per-sample panels") for h in headings)
    assert len(at.get("image")) >= 4


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
