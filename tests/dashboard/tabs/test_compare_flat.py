"""Compare explains the ``† constant probabilities`` mark as the leaderboard does: a model whose
output ignores the image has figures that order float noise."""

from mlflow import MlflowClient

from runs import contract
from tests.dashboard.conftest import open_page


def test_a_run_of_constant_probabilities_is_explained_under_the_compared_figures(
    page_env, dashboard_runs, fresh_run, mlflow_server
):
    from evaluator import evaluate_run

    evaluate_run(fresh_run, mlflow_server, batch_size=32)
    client = MlflowClient(mlflow_server)
    folder = client.get_run(fresh_run).data.tags[contract.EVALUATION_PATH_TAG]
    # as the evaluator tags a model whose probabilities spread by 1e-8 over the test split
    client.set_tag(fresh_run, contract.EVALUATION_RANGE_TAG, "1e-08")
    client.set_tag(fresh_run, contract.EVALUATION_RANGE_OF_TAG, folder)
    runs = dashboard_runs
    at = open_page(runs["pipeline"], "Compare", experiment_id=runs["experiment"],
                   compare_ids=[fresh_run])  # fmt: skip
    assert not at.exception
    notes = [w.value for w in at.warning if "constant probabilities" in w.value]
    assert notes and notes[0].startswith("† constant probabilities (1 run(s))"), notes
    caption = " ".join(c.value for c in at.caption)
    assert "`eval_*` of the most probable class" in caption and "`eval_thr_*`" in caption
