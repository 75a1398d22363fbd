"""Deletion curves and their areas against the random pixel order."""

import math

import numpy as np
import pytest
import torch

from explainer import METHODS, explain_images
from explainer.attributions import make_baseline
from explainer.faithfulness import deletion_curves, deletion_report, score_interval
from runs import inference


@pytest.fixture(scope="module")
def explanation(trained_model, lesions):
    _, test = lesions
    return explain_images(
        trained_model, test.x[:12], test.x[12:20], seed=0, ig_steps=24, shap_nsamples=24
    )


@pytest.mark.parametrize("method", METHODS)
def test_every_method_beats_the_random_order(explanation, method):
    entry = explanation.faithfulness["methods"][method]
    assert entry["auc"] < entry["random_auc"]
    assert entry["score"] == pytest.approx(entry["random_auc"] - entry["auc"])


@pytest.mark.parametrize("patch", [1, 3])
def test_curves_run_from_the_intact_image_to_the_baseline(trained_model, lesions, patch):
    x = lesions[1].x[:3]
    target = inference.predict(trained_model, inference.batches(x)).argmax(dim=1)
    base = make_baseline(trained_model, x, "mean")
    grid = [math.ceil(side / patch) for side in x.shape[-2:]]
    ranks = torch.stack([torch.randperm(grid[0] * grid[1]).reshape(grid) for _ in x])
    curves = deletion_curves(trained_model, x, target, base, ranks, n_steps=5, patch=patch)
    rows = torch.arange(len(x))
    assert curves.shape == (3, 6)
    first = inference.predict(trained_model, inference.batches(x))[rows, target]
    last = inference.predict(trained_model, inference.batches(base))[rows, target]
    assert np.allclose(curves[:, 0], first, atol=1e-5)
    assert np.allclose(curves[:, -1], last, atol=1e-5)


def test_report_is_reproducible_for_a_seed(trained_model, lesions):
    x = lesions[1].x[:2]
    target = inference.predict(trained_model, inference.batches(x)).argmax(dim=1)
    base = make_baseline(trained_model, x, "mean")
    maps = {"flat": torch.zeros(2, *x.shape[-2:])}  # all ties: order decided by the seed
    first = deletion_report(trained_model, x, target, base, maps, n_steps=4, seed=3)
    again = deletion_report(trained_model, x, target, base, maps, n_steps=4, seed=3)
    other = deletion_report(trained_model, x, target, base, maps, n_steps=4, seed=4)
    assert first == again
    assert first["random"]["auc_per_sample"] != other["random"]["auc_per_sample"]


@pytest.mark.parametrize("method", METHODS)
def test_a_score_comes_with_its_interval_over_the_explained_images(explanation, method):
    report = explanation.faithfulness
    entry = report["methods"][method]
    gains = np.array(report["random"]["auc_per_sample"]) - np.array(entry["auc_per_sample"])
    assert report["n_samples"] == len(gains) == 12
    assert entry["score_ci_low"] < entry["score"] < entry["score_ci_high"]
    assert gains.min() <= entry["score_ci_low"] and entry["score_ci_high"] <= gains.max()


def test_an_interval_of_scattered_gains_reaches_below_zero():
    gains = np.array([0.3, -0.25, 0.2, -0.2, 0.1, -0.1, 0.05, -0.08])
    low, high = score_interval(gains)
    assert low < 0 < high


def test_fewer_than_five_images_have_no_interval_and_equal_gains_a_zero_width_one():
    assert score_interval(np.array([0.2, 0.1, 0.3, 0.0])) == (None, None)
    assert score_interval(np.array([0.1] * 5)) == (0.1, 0.1)
