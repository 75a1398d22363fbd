"""The one leakage rule (dashboard.leakage): what a run's test split shares with train and val,
from the trainer's tags (leaderboard, top-K) and from dataset_stats.json (choosing)."""

import json
import shutil

import pytest

from common import InvalidInput
from dashboard.choose import choose_run
from dashboard.leakage import SplitOverlap, leakage_caveat, overlap
from runs import contract, schemas
from tests.dashboard.conftest import leak, other_test_data


def _stats(groups: dict | None = None, **leakage) -> schemas.DatasetStats:
    return schemas.DatasetStats(
        groups={"overlap": groups or {}}, leakage={"exact": {}, "near": {}, **leakage}
    )


def test_patients_shared_by_the_test_split_and_train_are_a_caveat():
    caveat = leakage_caveat(_stats(groups={"train/test": {"count": 2}}))
    assert caveat is not None and "2 patients (groups) have images across its test" in caveat
    assert caveat.endswith("so its test figures may be optimistic")


def test_duplicates_between_train_and_val_only_are_no_caveat():
    stats = _stats(near={"train/val": {"count": 3}}, groups={"train/val": {"count": 1}})
    assert leakage_caveat(stats) is None


def test_a_patient_in_test_and_train_is_read_from_the_trainers_words(leakage_tags):
    words = leakage_tags["patients"][contract.LEAKAGE_TAG]
    assert "groups in two splits" in words  # the real dataloader found the shared patient
    assert overlap({contract.LEAKAGE_TAG: words}) == SplitOverlap(groups=1)


def test_a_patient_in_test_and_train_is_read_from_the_trainers_json_tag(leakage_tags):
    tags = leakage_tags["patients"]
    assert json.loads(tags[contract.TEST_OVERLAP_TAG]) == {"exact": 0, "near": 0, "groups": 1}
    assert overlap(tags) == SplitOverlap(groups=1)


def test_the_json_tag_is_read_before_the_words(leakage_tags):
    tags = {**leakage_tags["test"], contract.LEAKAGE_TAG: "leakage: train/test copies, 3"}
    assert overlap(tags) == overlap(leakage_tags["test"]) == SplitOverlap(exact=3)


@pytest.mark.parametrize(
    "tags",
    [
        {contract.LEAKAGE_TAG: "possible leakage: test images copied into train (3)"},
        {contract.LEAKAGE_TAG: "possible leakage: exact duplicate images across splits (3 a→b)"},
        {contract.TEST_OVERLAP_TAG: '{"exact": 3}'},
        {contract.TEST_OVERLAP_TAG: "three"},
    ],
    ids=["reworded", "pairs reworded", "json without a count", "not json"],
)
def test_a_leakage_tag_that_cannot_be_read_is_leakage_unknown(tags):
    found = overlap(tags)
    assert found.unknown and found  # not a clean split
    assert found.why.startswith("leakage unknown: the trainer's leakage tag could not be read")


def test_a_run_whose_test_split_shares_patients_with_train_needs_the_confirmation(
    fresh_run, settings, store
):
    leak(settings.mlflow_tracking_uri, fresh_run, near=None, groups="train/test")
    with pytest.raises(InvalidInput, match=r"possible leakage: 2 patients .*--yes-leakage"):
        choose_run(fresh_run, "looks fine", settings, store, allow_unevaluated=True)
    assert not settings.run_id_file.exists() and store.recent() == []


def test_duplicates_between_train_and_val_only_need_no_confirmation_nor_caveat(
    fresh_run, settings, store
):
    leak(settings.mlflow_tracking_uri, fresh_run, near="train/val")
    choice = choose_run(fresh_run, "clean test split", settings, store, allow_unevaluated=True)
    assert choice.caveats == [] and store.recent()[0]["evaluation_caveats"] == []


def test_a_test_split_the_trainer_did_not_check_is_leakage_unknown_and_needs_the_tick():
    """It was read as clean: a test/ folder added after training was evaluated, ranked and
    chosen as if it had been checked against train and val."""
    tags = {contract.TEST_OVERLAP_TAG: json.dumps({"audited": False})}
    found = overlap(tags)
    assert found and found.why.startswith("leakage unknown: the trainer did not check the test")
    caveat = leakage_caveat(schemas.DatasetStats(leakage={"exact": {}, "near": {}}), tags)
    assert caveat is not None and "did not check the test split" in caveat


def _report(**fields) -> schemas.EvaluationReport:
    return schemas.EvaluationReport(n_samples=4, class_names=["a", "b"], overall={}, **fields)


OWN = {contract.TEST_DATA_TAG: "own-split-hash"}


def test_a_leak_of_the_runs_own_split_is_no_caveat_of_figures_of_other_test_data():
    stats = _stats(near={"train/test": {"count": 2}})
    other = _report(own_data=False, dataset_hash="other-hash")
    assert leakage_caveat(stats, OWN) is not None  # of its own test split's figures
    assert leakage_caveat(stats, OWN, other) is None


@pytest.mark.parametrize(
    "fields, tags",
    [
        ({"own_data": False, "dataset_hash": "h", "data_changed": "images added since"}, OWN),
        ({"own_data": False, "dataset_hash": "own-split-hash"}, OWN),
        ({"own_data": False, "dataset_hash": "h"}, {}),
        ({"own_data": False}, OWN),
        ({"own_data": None, "dataset_hash": "h"}, OWN),
    ],
    ids=[
        "own folder, split changed",
        "its very files elsewhere",
        "run without the hash",
        "evaluation without the hash",
        "own data unknown",
    ],
)
def test_figures_that_may_be_of_the_leaking_split_keep_the_caveat(fields, tags):
    stats = _stats(near={"train/test": {"count": 2}})
    assert leakage_caveat(stats, tags, _report(**fields)) is not None


def test_a_run_evaluated_on_another_folder_is_chosen_without_the_leakage_confirmation(
    fresh_run, settings, store, tiny_demo_data, tmp_path
):
    from evaluator import evaluate_run

    uri = settings.mlflow_tracking_uri
    leak(uri, fresh_run)  # its own test split has near copies in train
    with pytest.raises(InvalidInput, match="--yes-leakage"):
        choose_run(fresh_run, "leaks", settings, store, allow_unevaluated=True)
    other = other_test_data(tiny_demo_data, tmp_path / "external")
    evaluate_run(fresh_run, uri, data_dir=other, batch_size=32)
    choice = choose_run(fresh_run, "external figures", settings, store)
    assert not [c for c in choice.caveats if "leakage" in c]
    assert [c for c in choice.caveats if f"the evaluation used the test split of {other}" in c] == [
        f"the evaluation used the test split of {other}, not the run's own data (nothing checked "
        "its images against the run's training data)"
    ]


def test_the_runs_own_test_split_copied_elsewhere_still_needs_the_confirmation(
    fresh_run, settings, store, tiny_demo_data, tmp_path
):
    """The same files under another path: the evaluator's hash is the trainer's."""
    from evaluator import evaluate_run

    uri = settings.mlflow_tracking_uri
    leak(uri, fresh_run)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_demo_data / "test", copy / "test")
    evaluate_run(fresh_run, uri, data_dir=copy, batch_size=32)
    with pytest.raises(InvalidInput, match=r"possible leakage: 2 images .*--yes-leakage"):
        choose_run(fresh_run, "copied", settings, store)


def test_the_leaderboard_marks_the_runs_own_test_split_evaluated_under_another_path(leakage_tags):
    """The same rule as choosing: its very files elsewhere (the hash the trainer recorded) are
    still the split that leaks; other files, or an unknown hash, as the choice decides."""
    from dashboard import leaderboard

    def basis(data: str, recorded: str | None) -> leaderboard.Basis:
        folder = "evaluation/r-1"
        tags = {**leakage_tags["test"], contract.EVALUATION_PATH_TAG: folder,
                **contract.evaluation_tags("none", False, data, folder)}  # fmt: skip
        run = {"run_id": "r", "params": {}, "metrics": {"eval_accuracy": 0.9}, "tags": tags}
        if recorded:
            run["tags"][contract.TEST_DATA_TAG] = recorded
        return leaderboard.basis_of(run)

    assert basis("own-hash", "own-hash").leakage  # a copy of its own split
    assert not basis("other-hash", "own-hash").leakage  # other test data
    assert basis("other-hash", None).leakage  # a run from before the hash: not known
