from dashboard.provenance import dataset_warnings
from runs import schemas

CONFLICT = {"files": ["train/a/1.png", "train/b/1.png"], "classes": ["a", "b"]}


def _stats(**leakage) -> schemas.DatasetStats:
    return schemas.DatasetStats(leakage={"exact": {}, "near": {}, **leakage})


def test_duplicates_of_every_split_pair_with_test_and_kind_are_counted_in_one_warning():
    stats = _stats(
        exact={"train/test": {"count": 2, "examples": []}},
        near={"val/test": {"count": 3, "examples": []}, "train/val": {"count": 0}},
    )
    assert dataset_warnings(stats) == [
        "Possible leakage: 5 images have an exact or near duplicate across the test split and "
        "train/val; test figures may be optimistic."
    ]


def test_duplicates_between_train_and_val_only_do_not_call_the_test_figures_optimistic():
    [warning] = dataset_warnings(_stats(near={"train/val": {"count": 3, "examples": []}}))
    assert warning.startswith("Train and val overlap: 3 images have an exact or near duplicate")
    assert "the test figures are not affected" in warning


def test_patients_shared_by_test_and_train_are_a_leakage_warning():
    stats = schemas.DatasetStats(leakage={}, groups={"overlap": {"train/test": {"count": 2}}})
    assert dataset_warnings(stats) == [
        "Possible leakage: 2 patients (groups) have images across the test split and train/val; "
        "test figures may be optimistic."
    ]


def test_images_under_two_classes_are_a_warning():
    [warning] = dataset_warnings(_stats(label_conflicts={"count": 4, "examples": [CONFLICT]}))
    assert warning.startswith("Labels in conflict: 4 image(s) appear under two or more classes")


def test_a_clean_dataset_and_absent_statistics_have_no_warning():
    assert dataset_warnings(_stats()) == []
    assert dataset_warnings(None) == []
