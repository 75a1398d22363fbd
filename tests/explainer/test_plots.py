"""What the explainer's figures say in words: the decision explained and each map's scale."""

import numpy as np

from explainer import plots


def test_an_argmax_decision_is_labelled_with_its_probability():
    label = plots.decision_label(np.array([0.2, 0.8]), 1, ["benign", "malignant"], None)
    assert label == "predicted: malignant (0.80)"


def test_a_threshold_decision_is_labelled_with_the_probability_and_threshold_behind_it():
    point = {"positive_class": "malignant", "threshold": 0.863}
    label = plots.decision_label(np.array([0.86, 0.14]), 1, ["malignant", "benign"], point)
    # The explained class has probability 0.14: without this, "predicted: benign (0.14)".
    assert label == "decided: benign\n(P(malignant) 0.86 < threshold 0.863)"


def test_each_overlay_reports_the_scale_it_was_drawn_on():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    image = np.zeros((4, 4, 1))
    heat = np.linspace(-0.5, 0.5, 16).reshape(4, 4)
    assert plots._overlay(ax, image, heat, signed=True) == "±0.5"
    assert plots._overlay(ax, image, np.abs(heat) * 0.026, signed=False) == "0–0.013"


def test_a_shap_map_is_titled_with_the_images_it_compares_with():
    assert plots.map_title("shap", "±0.5", 16) == "SHAP\n(±0.5, vs 16 test images)"
    assert plots.map_title("gradcam", "0–0.013", 16) == "Grad-CAM\n(0–0.013)"
