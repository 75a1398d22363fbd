from tests.dashboard.conftest import charts, open_page


def test_params_that_differ_metrics_and_curves(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Compare",
                   experiment_id=dashboard_runs["experiment"],
                   compare_ids=[dashboard_runs["child"]])  # fmt: skip
    assert not at.exception
    params, metrics = at.dataframe[0].value, at.dataframe[1].value
    assert "lr" in params.index  # 0.001 vs 0.01
    assert "model" in params.index  # smallcnn vs absent
    assert metrics.shape[1] == 2
    assert at.selectbox(key="compare_metric").value == "val_auc"
    assert charts(at)


def test_equal_params_are_hidden_unless_asked(page_env, dashboard_runs):
    runs = dict(experiment_id=dashboard_runs["experiment"], compare_ids=[dashboard_runs["bare"]])
    at = open_page(dashboard_runs["pipeline"], "Compare", **runs)
    assert "model" not in at.dataframe[0].value.index
    at.toggle(key="compare_only_diff").set_value(False).run()
    assert "model" in at.dataframe[0].value.index


def test_without_runs_to_compare_says_how_to_pick_them(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Compare",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert "Compare with" in at.info[0].value
