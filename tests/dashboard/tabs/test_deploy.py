from common import Settings
from jobs import SelectionStore, get_database
from tests.dashboard.conftest import open_page


def test_download_writes_run_id_file_in_the_working_directory(page_env, dashboard_runs):
    run_id = dashboard_runs["pipeline"]
    at = open_page(run_id, "Choose model", experiment_id=dashboard_runs["experiment"])
    assert "No model has been selected yet." in [c.value for c in at.caption]
    at.button(key="download_model").click().run()
    assert not at.exception
    assert (page_env / "run_id.txt").read_text().strip() == run_id
    assert (page_env / "artifacts" / run_id / "model" / "MLmodel").is_file()
    assert run_id in at.success[0].value
    recent = next(f.value for f in at.dataframe if "selected_at" in f.value.columns)
    assert list(recent["run_id"]) == [run_id]
    [record] = SelectionStore(get_database(Settings())).recent()
    assert record["model_uri"] == f"runs:/{run_id}/model"


def test_download_of_a_run_without_model_is_a_clear_warning(page_env, dashboard_runs):
    at = open_page(
        dashboard_runs["failed"], "Choose model", experiment_id=dashboard_runs["experiment"]
    )
    at.button(key="download_model").click().run()
    assert not at.exception
    assert "no model logged as 'model'" in at.warning[0].value
    assert not (page_env / "run_id.txt").exists()


def test_top_k_download(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Choose model", topk_metric="val_auc", topk_k=2,
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    at.button(key="download_topk").click().run()
    assert not at.exception
    assert "Downloaded 2 runs" in at.success[0].value
    assert len(list((page_env / "artifacts").iterdir())) == 2


def test_model_card_and_serving_instructions(page_env, dashboard_runs):
    run_id = dashboard_runs["pipeline"]
    at = open_page(run_id, "Choose model", experiment_id=dashboard_runs["experiment"])
    text = "\n".join(m.value for m in at.markdown)
    assert "# Model card: smallcnn-evaluated" in text
    assert "## Evaluation (test set, 95% confidence intervals)" in text
    assert f"mlflow models serve -m runs:/{run_id}/model -p 5001 --env-manager local" in text
    assert "N×3×32×32" in text
    assert at.get("download_button")
