"""The out-of-distribution reference the trainer fits (``trainer.ood``) and logs with the model."""

import mlflow
import numpy as np
import pytest
import torch

from runs import (
    Preprocessing,
    build_model,
    conformal_threshold,
    flagged,
    load_model,
    reference_of,
)
from trainer import train
from trainer.engine import Batches
from trainer.ood import fit_reference, member_features


def _split(rng: np.random.Generator, n: int, low: int, high: int) -> Batches:
    """``n`` grey 16 px images of pixels drawn in ``[low, high)``, labels alternating."""
    images = rng.integers(low, high, (n, 16, 16, 1), dtype=np.uint8)
    pp = Preprocessing(
        image_size=(16, 16), channels=1, class_names=["a", "b"], mean=[0.45], std=[0.05]
    )
    return Batches(images, np.arange(n, dtype=np.int64) % 2, pp.to_tensor)


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build_model("smallcnn", 1, 2, mean=[0.45], std=[0.05], width=4).eval()
    train, val = _split(rng, 80, 100, 130), _split(rng, 40, 100, 130)
    reference, warning = fit_reference(model, train, val, torch.device("cpu"), 0.9)
    assert warning is None  # 40 validation images are enough for the 0.9 quantile
    return model, reference, val


def test_the_threshold_is_taken_on_the_validation_images_alone(fitted):
    model, reference, val = fitted
    distances = reference.distances(member_features(model, val, torch.device("cpu")))
    assert reference.threshold == conformal_threshold(distances, 0.9)
    assert (distances > reference.threshold).sum() <= 4  # at most 1 - 0.9 of them
    assert (reference.validation_images, reference.training_images) == (40, 80)


def test_images_unlike_the_training_images_score_above_one(fitted):
    model, reference, _ = fitted
    unlike = _split(np.random.default_rng(1), 10, 0, 256)  # noise over the whole range
    scores = reference.scores(member_features(model, unlike, torch.device("cpu")))
    assert (scores > 1).all(), scores


def test_too_few_validation_images_for_the_quantile_are_said_with_the_rate_they_give():
    rng = np.random.default_rng(0)
    model = build_model("smallcnn", 1, 2, mean=[0.45], std=[0.05], width=4).eval()
    train, val = _split(rng, 40, 100, 130), _split(rng, 9, 100, 130)
    reference, warning = fit_reference(model, train, val, torch.device("cpu"), 0.99)
    assert reference.expected_rate == pytest.approx(0.1)  # the largest of 9: 1 in 10
    assert "flags about 10.0% of new images" in warning and "at least 99" in warning


def test_a_model_whose_features_do_not_vary_goes_without_the_check():
    model = build_model("smallcnn", 1, 2, width=4).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # every image gives the same features: no distance means anything
    rng = np.random.default_rng(0)
    reference, why = fit_reference(model, _split(rng, 20, 0, 256), _split(rng, 10, 0, 256),
                                   torch.device("cpu"), 0.9)  # fmt: skip
    assert reference is None and "do not vary" in why


def test_a_trained_model_carries_the_check_and_its_run_the_threshold(trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--ood-quantile", "0.95"))
    params = mlflow.MlflowClient(mlflow_server).get_run(run_id).data.params
    reference = reference_of(load_model(run_id, mlflow_server))
    assert params["ood_quantile"] == "0.95"
    assert float(params["ood_threshold"]) == pytest.approx(reference.threshold, abs=1e-6)
    assert reference.quantile == 0.95 and reference.validation_images > 0


def test_ood_quantile_zero_trains_a_model_without_the_check(trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--ood-quantile", "0"))
    params = mlflow.MlflowClient(mlflow_server).get_run(run_id).data.params
    assert "ood_threshold" not in params
    assert getattr(load_model(run_id, mlflow_server), "ood_reference", None) is None


def test_the_training_images_pixel_ranges_flag_a_frame_of_their_own_brightness(fitted):
    model, reference, _ = fitted
    (mean_low, mean_high), (std_low, _) = reference.pixel_ranges
    assert 100 / 255 < mean_low < mean_high < 130 / 255 and std_low > 0
    frame = torch.full((1, 1, 16, 16), 115 / 255)  # inside their brightness, without spread
    with torch.no_grad():
        features, _ = model.features_and_logits(frame)
    reference.threshold = 1e9  # so that the pixels alone decide
    assert flagged(reference.scores(features, frame)).tolist() == [True]
