"""The Choose model tab's top K names its metric as the leaderboard does, the key at hand."""

from dashboard.tabs import downloads
from tests.dashboard.conftest import open_page


def test_the_top_k_tables_are_headed_by_readable_names_with_the_key_in_the_help():
    config = downloads.headers("eval_roc_auc_macro")
    metric, run_id = config["eval_roc_auc_macro"], config["run_id"]
    assert (metric["label"], run_id["label"]) == ("test AUC (macro)", "run ID")
    assert "eval_roc_auc_macro" in metric["help"] and "run_id" in run_id["help"]


def test_rank_by_offers_name_and_key_as_the_leaderboards_sort_by(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Choose model", topk_metric="val_auc",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert not at.exception
    options = at.selectbox(key="topk_metric").options
    assert "validation AUC · val_auc" in options and "val_auc" not in options
