"""The Choose model tab's top K: what it ranks by (``dashboard.tabs.downloads.rank_by``)."""

from dashboard.tabs.downloads import rank_by


def test_the_top_k_does_not_rank_by_the_share_of_test_images_the_check_flags():
    """The runs whose check flags the fewest test images are not the best ones to download."""
    metrics = {"eval_accuracy": 0.9, "eval_accuracy_ci_low": 0.8, "eval_ood_rate": 0.01,
               "eval_ood_rate_ci_high": 0.05, "eval_ood_expected_rate": 0.01,
               "lr": 0.001}  # fmt: skip
    assert rank_by([{"metrics": metrics}, {"metrics": {"val_auc": 0.7}}]) == [
        "eval_accuracy", "val_auc"
    ]  # fmt: skip
