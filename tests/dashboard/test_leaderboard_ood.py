"""The leaderboard's column of the share of test images the model's out-of-distribution check
flags (``eval_ood_rate``): shown and sortable, better neither way."""

from dashboard import evaluation_table, leaderboard
from runs import schemas
from tests.dashboard.test_leaderboard import _evaluated

OOD = {"eval_ood_rate": 0.2, "eval_ood_rate_ci_low": 0.15, "eval_ood_rate_ci_high": 0.26,
       "eval_ood_expected_rate": 0.0127}  # fmt: skip


def _with_shares(*shares: float, tta: str = "none") -> list[dict]:
    """Evaluated runs (of one test data) whose checks flag ``shares`` of the test images."""
    rows = [_evaluated(f"r{i}", 0.8 + i / 100, tta=tta) for i in range(len(shares))]
    for row, share in zip(rows, shares, strict=True):
        row["metrics"] |= {**OOD, "eval_ood_rate": share}
    return rows


def test_the_flagged_share_is_a_default_column():
    assert "eval_ood_rate" in leaderboard.default_columns(_with_shares(0.01, 0.2))


def test_the_flagged_share_is_shown_with_its_interval_and_never_starred():
    """A check that flags 1 % of the test images is not better than one that flags 20 %: the
    second's test data may differ, or the first's check flag nothing."""
    table = leaderboard.table(_with_shares(0.01, 0.2), ["eval_ood_rate", "eval_accuracy"])
    assert list(table["eval_ood_rate"]) == ["0.01 (0.15–0.26)", "0.2 (0.15–0.26)"]
    assert list(table["eval_accuracy"]) == ["0.8", "0.81 ★"]  # the runs rank


def test_the_flagged_share_of_an_evaluation_with_tta_has_no_tta_caveat():
    """The check scores each image once, as the served model does, whatever the tta."""
    table = leaderboard.table(_with_shares(0.01, tta="both"), ["eval_ood_rate", "eval_accuracy"])
    assert list(table["eval_ood_rate"]) == ["0.01 (0.15–0.26)"]
    assert list(table["eval_accuracy"]) == ["0.8 † tta 'both'"]


def test_the_flagged_shares_column_says_what_it_is_not_which_way_is_better():
    said = leaderboard.column_help("eval_ood_rate")
    assert "out-of-distribution check calls unlike its training images" in said
    assert "read against eval_ood_expected_rate" in said
    assert "is better" not in said and "no better" in said


def test_a_figure_of_the_check_is_better_neither_way_and_never_ranked_even_a_new_one():
    """Judged by its name's prefix, as ``metric_keys.ood_figure``: a figure of the check added
    later (``eval_ood_rate_<x>``) is not starred as higher-is-better."""
    for metric in ("eval_ood_rate", "eval_ood_expected_rate", "eval_ood_rate_by_site"):
        assert leaderboard.direction(metric) == "better neither way", metric
        assert not leaderboard.ranked(metric), metric
    assert leaderboard.ranked("eval_accuracy")


def test_the_flagged_share_is_no_row_of_the_tables_of_the_models_answers():
    """Not a per-class figure (nor an overall one of the argmax): it has its own section."""
    report = schemas.EvaluationReport(
        n_samples=10, class_names=["nevus", "other"],
        overall={"accuracy": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}},
    )  # fmt: skip
    table = evaluation_table({"eval_accuracy": 0.5, **OOD}, report)
    assert list(table["metric"]) == ["accuracy"]
