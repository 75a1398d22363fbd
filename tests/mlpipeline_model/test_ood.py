"""The out-of-distribution check a model carries (``mlpipeline_model.ood``) and how the logged
model's table answers it."""

import io
import zipfile

import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis

from mlpipeline_model import (
    Ensemble,
    ImageClassifierModel,
    OODReference,
    build_model,
    conformal_threshold,
    flagged,
    reference_of,
)
from mlpipeline_model.ood import MAX_SCORE


def test_the_threshold_is_the_split_conformal_rank_of_the_validation_distances():
    distances = np.arange(19, 0, -1, dtype=float)  # 19 validation images, in any order
    assert conformal_threshold(distances, 0.9) == 18.0  # the ⌈20·0.9⌉ = 18th smallest
    assert conformal_threshold(distances, 0.5) == 10.0
    assert conformal_threshold(distances, 0.99) == 19.0  # rank 20 passes n: the largest


def test_the_expected_rate_is_one_over_n_plus_one_below_enough_validation_images():
    def rate(n: int) -> float:
        return OODReference([np.eye(1)], [np.zeros((1, 1))], 1.0, 0.99, n, 100).expected_rate

    assert rate(78) == pytest.approx(1 / 79)  # BreastMNIST: the largest of its 78
    assert rate(199) == pytest.approx(0.01)  # r = 198 of 199: two of 200 at or above


def test_a_threshold_needs_distances_and_a_quantile_below_one():
    with pytest.raises(ValueError, match="quantile"):
        conformal_threshold(np.array([]), 0.9)
    with pytest.raises(ValueError, match="quantile"):
        conformal_threshold(np.array([1.0]), 1.0)


def test_the_distance_is_mahalanobis_to_the_nearest_class_mean():
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    precision = np.array([[1.0, 0.2], [0.2, 0.25]])
    reference = OODReference.of([means], [precision], 2.0, 0.9, 10, 100)
    features = np.array([[9.0, 2.0], [-1.0, 3.0]])
    expected = [
        min(mahalanobis(f, m, precision) for m in means) for f in features
    ]  # scipy's, independently
    np.testing.assert_allclose(reference.distances([features]), expected, rtol=1e-6)
    np.testing.assert_allclose(reference.scores([features]), np.array(expected) / 2.0, rtol=1e-6)


def test_an_ensembles_distance_is_the_mean_of_its_members():
    identity = np.eye(2)
    reference = OODReference.of([np.zeros((1, 2)), np.zeros((1, 2))], [identity, 4 * identity],
                                1.0, 0.9, 10, 100)  # fmt: skip
    features = [np.array([[3.0, 4.0]]), np.array([[0.0, 1.0]])]  # distances 5 and 2
    assert reference.distances(features) == pytest.approx([3.5])


def test_an_ensembles_features_and_logits_are_its_members_and_its_forward():
    torch.manual_seed(0)
    members = [build_model("smallcnn", 1, 3, width=4).eval() for _ in range(2)]
    ensemble = Ensemble(members).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        features, logits = ensemble.features_and_logits(x)
        assert torch.allclose(logits, ensemble(x), atol=1e-6)
        assert [f.shape for f in features] == [(3, 16), (3, 16)]
        assert torch.equal(features[1], members[1].embed(x))


def _wrapper(reference: OODReference | None) -> ImageClassifierModel:
    torch.manual_seed(0)
    wrapper = ImageClassifierModel((28, 28), 1, ["a", "b"])
    wrapper.model = build_model("smallcnn", 1, 2, width=4).eval()
    if reference is not None:
        wrapper.model.ood_reference = reference.state()
    return wrapper


def test_a_model_with_the_check_answers_a_score_and_a_flag_per_image():
    wrapper = _wrapper(None)
    with torch.no_grad():
        [features], _ = wrapper.model.features_and_logits(torch.full((1, 1, 28, 28), 0.5))
    # every training image like a mid-grey one; the threshold just above its own distance 0
    reference = OODReference.of([features.numpy()], [np.eye(16)], 1e-3, 0.99, 50, 500)
    wrapper = _wrapper(reference)
    images = np.stack([np.full((28, 28, 1), 128, np.uint8), np.full((28, 28, 1), 255, np.uint8)])
    table = wrapper.predict(None, images)
    assert list(table.columns) == [
        "a", "b", "predicted_class", "ood_score", "out_of_distribution", "input_note"
    ]  # fmt: skip
    assert table["out_of_distribution"].tolist() == [False, True]
    assert table["ood_score"].iloc[0] < 1 < table["ood_score"].iloc[1]
    assert wrapper.ood_check["quantile"] == 0.99 and wrapper.ood_check["validation_images"] == 50


def test_a_model_without_the_check_answers_as_before():
    wrapper = _wrapper(None)  # trained with --ood-quantile 0, or before the check existed
    table = wrapper.predict(None, np.zeros((2, 28, 28, 1), np.uint8))
    assert list(table.columns) == ["a", "b", "predicted_class", "input_note"]  # a grey model's
    assert wrapper.ood_check is None
    probs, scores = wrapper.assess(np.zeros((2, 28, 28, 1), np.uint8))
    assert probs.shape == (2, 2) and scores is None


def test_features_that_are_not_finite_score_flagged_not_nan():
    reference = OODReference.of([np.zeros((1, 2))], [np.eye(2)], 1.0, 0.99, 10, 100)
    scores = reference.scores([np.array([[np.nan, 0.0], [0.1, 0.0]])])
    assert scores[0] == MAX_SCORE and flagged(scores).tolist() == [True, False]


def test_a_module_carrying_the_check_pickles_no_class_older_code_lacks():
    # a service of the release before the check unpickles such a model and ignores the check
    module = build_model("smallcnn", 1, 2, width=4)
    module.ood_reference = OODReference.of([np.zeros((2, 16))], [np.eye(16)], 1.0, 0.99, 9,
                                           90).state()  # fmt: skip
    buffer = io.BytesIO()
    torch.save(module, buffer)
    with zipfile.ZipFile(buffer) as archive:
        pickled = b"".join(archive.read(n) for n in archive.namelist() if n.endswith(".pkl"))
    assert b"mlpipeline_model.ood" not in pickled
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    assert reference_of(loaded).validation_images == 9


def test_the_signature_types_the_check_as_the_table_answers_it():
    from runs.packaging import signature

    table = _wrapper(OODReference.of([np.zeros((1, 16))], [np.eye(16)], 1.0, 0.99, 9, 90)).predict(
        None, np.zeros((1, 28, 28, 1), np.uint8)
    )
    outputs = signature(["a", "b"], None, True, channels=1).outputs.to_dict()  # a grey model
    declared = {c["name"]: c["type"] for c in outputs}
    assert declared["ood_score"] == "double" and table["ood_score"].dtype == np.float64
    assert (
        declared["out_of_distribution"] == "boolean" and table["out_of_distribution"].dtype == bool
    )
    assert declared["input_note"] == "string" and table["input_note"].tolist() == [None]
    assert [c.get("required", True) for c in outputs if c["name"] == "input_note"] == [False]
    assert list(declared) == list(table.columns)


def test_a_frame_unlike_the_training_images_in_brightness_or_spread_is_flagged():
    # features never flag here (a huge threshold): the pixels' ranges alone decide
    reference = OODReference.of([np.zeros((1, 2))], [np.eye(2)], 1e9, 0.99, 78, 546)
    reference.pixel_ranges = [(0.4, 0.5), (0.05, 0.1)]  # mean, standard deviation
    like = 0.45 + 0.07 * torch.from_numpy(
        np.random.default_rng(0).choice([-1.0, 1.0], (1, 1, 8, 8))
    )
    blank = torch.full((1, 1, 8, 8), 0.45)  # the training images' brightness, no spread
    dark = like * 0.15
    x = torch.cat([like, blank, dark]).float()
    scores = reference.scores([np.zeros((3, 2))], x)
    assert flagged(scores).tolist() == [False, True, True]
    assert reference.scores([np.zeros((3, 2))]).tolist() == [0.0, 0.0, 0.0]  # without x: features
