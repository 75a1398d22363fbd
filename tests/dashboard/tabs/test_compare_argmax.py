"""Compare's paired accuracy is the most probable class's (argmax), and says so: a two-class
model is served by its own threshold, whose decisions it is not."""

from tests.dashboard.conftest import open_page


def test_the_paired_accuracy_is_named_the_argmaxs_not_the_served_decisions(
    page_env, dashboard_runs, fresh_run, mlflow_server
):
    from evaluator import evaluate_run

    evaluate_run(fresh_run, mlflow_server, batch_size=32)  # the same tiny test split
    at = open_page(dashboard_runs["pipeline"], "Compare",
                   experiment_id=dashboard_runs["experiment"], compare_ids=[fresh_run])  # fmt: skip
    assert not at.exception
    table = next(t.value for t in at.table if "Verdict" in t.value.columns)
    label = "test accuracy (most probable class)"
    assert list(table["Metric"]) == ["test AUC (macro)", label]
    [caption] = [c.value for c in at.caption if "paired bootstrap" in c.value]
    assert "Accuracy here is of the most probable class (argmax, as eval_accuracy), not of " in (
        caption
    )
    assert "served with at its own threshold (eval_thr_*), which is paired below as " in caption
    # the test that decides accuracy, and why not the exact one
    assert "For accuracy the McNemar mid-p test on the images the runs get" in caption
    assert "the exact McNemar test is conservative when few images differ" in caption
    # three classes: no threshold decides them, and the page says why no such rows follow
    [note] = [i.value for i in at.info if "two-class runs" in i.value]
    assert note.startswith("Sensitivity and specificity at each run's own decision threshold")
    assert "these runs predict 3 classes" in note
