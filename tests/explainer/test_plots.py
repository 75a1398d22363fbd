"""What the explainer's figures say in words: the decision explained and each map's scale."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

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
    ax = Figure().subplots()
    image = np.zeros((4, 4, 1))
    heat = np.linspace(-0.5, 0.5, 16).reshape(4, 4)
    assert plots._overlay(ax, image, heat, signed=True) == "±0.5"
    assert plots._overlay(ax, image, np.abs(heat) * 0.026, signed=False) == "0–0.013"


def test_a_shap_map_is_titled_with_the_images_it_compares_with():
    assert plots.map_title("shap", "±0.5", 16) == "SHAP\n(±0.5, vs 16 test images)"
    assert plots.map_title("gradcam", "0–0.013", 16) == "Grad-CAM\n(0–0.013)"


def _shap_values() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 0.01, (16, 1, 28, 28))


def _titles(fig) -> str:
    return " ".join(ax.get_title() for ax in fig.axes)


def test_the_shap_summary_names_how_the_explained_class_was_chosen():
    fig = plots.shap_summary_figure(
        _shap_values(), ["grey"], ["b"] * 16, "decided by the threshold"
    )
    assert "(explained class: decided by the threshold)" in _titles(fig)


def test_the_shap_summary_does_not_claim_the_predicted_class_by_default():
    """A thresholded run explains the threshold's class, which is not always the most probable."""
    fig = plots.shap_summary_figure(_shap_values(), ["grey"], ["b"] * 16)
    assert "predicted" not in _titles(fig)


def test_the_shap_summarys_mass_axis_label_clears_the_colour_bar():
    fig = plots.shap_summary_figure(_shap_values(), ["grey"], ["b"] * 16)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)  # places the constrained layout
    _image, boxes, colour_bar = fig.axes
    label = boxes.yaxis.label.get_window_extent(renderer)
    for tick in colour_bar.get_yticklabels():
        assert not label.overlaps(tick.get_window_extent(renderer)), tick.get_text()


def test_the_deletion_curves_differ_by_more_than_colour(monkeypatch):
    """Told apart under colour blindness or in greyscale (WCAG 1.4.1): by line style and marker."""
    monkeypatch.setattr(plots, "png_bytes", lambda fig: fig)
    curve = {"curve": [1.0, 0.5, 0.2], "auc": 0.4}
    report = {"fractions": [0, 0.5, 1], "random": curve, "methods": dict.fromkeys("abc", curve)}
    lines = plots.deletion_plot(report).axes[0].get_lines()
    styles = {(str(line.get_linestyle()), line.get_marker()) for line in lines}
    assert len(styles) == len(lines) == 4  # three methods and the random order


def _heat() -> np.ndarray:
    return np.linspace(-0.5, 1.0, 16).reshape(4, 4)


@pytest.mark.parametrize(
    ("method", "heat", "key"),
    [
        ("shap", _heat(), ["negative", "0", "positive"]),
        ("gradcam", np.abs(_heat()), ["low", "high"]),
    ],
)
def test_each_map_of_a_sample_panel_has_a_colour_key(monkeypatch, method, heat, key):
    """WCAG 1.1.1 and 1.4.1: what the colours mean, in words (signed maps centred at 0)."""
    monkeypatch.setattr(plots, "png_bytes", lambda fig: fig)
    fig = plots.sample_panel(np.zeros((4, 4, 1)), {method: heat}, "b", "predicted: b", False)
    bar = fig.axes[1].images[-1].colorbar
    assert [t.get_text() for t in bar.ax.get_xticklabels()] == key
    low, high = bar.mappable.get_clim()
    assert bar.get_ticks()[0] == low and bar.get_ticks()[-1] == high
    assert low == 0 or low == -high


def test_a_grad_cam_grid_has_a_colour_key(monkeypatch):
    monkeypatch.setattr(plots, "png_bytes", lambda fig: fig)
    fig = plots.cam_grid(np.zeros((2, 4, 4, 1)), np.ones((2, 4, 4)), ["a", "b"], [False, True])
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert [t.get_text() for t in bar.get_xticklabels()] == ["0: low", "its maximum: high"]


def test_grad_cam_is_drawn_in_a_perceptually_uniform_colour_map():
    """Not jet: its order of colours is lost under colour blindness and in greyscale."""
    ax = Figure().subplots()
    plots._overlay(ax, np.zeros((4, 4, 1)), np.ones((4, 4)), signed=False)
    assert ax.images[-1].get_cmap().name in {"viridis", "cividis", "inferno", "magma", "plasma"}


@pytest.mark.parametrize(("wrong", "mark"), [(True, "✗ misclassified"), (False, "✓ correct")])
def test_a_sample_panel_says_in_words_whether_the_decision_was_wrong(monkeypatch, wrong, mark):
    """WCAG 1.4.1: the title's red is not the only cue."""
    monkeypatch.setattr(plots, "png_bytes", lambda fig: fig)
    fig = plots.sample_panel(np.zeros((4, 4, 1)), {}, "b", "predicted: a", wrong)
    assert fig.axes[0].get_title().startswith(f"{mark}, true: b\n")


def test_the_colour_keys_labels_of_a_one_image_grad_cam_grid_do_not_overlap(monkeypatch):
    monkeypatch.setattr(plots, "png_bytes", lambda fig: fig)
    fig = plots.cam_grid(np.zeros((1, 4, 4, 1)), np.ones((1, 4, 4)), ["a"], [False])
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    low, high = (t.get_window_extent(renderer) for t in bar.get_xticklabels())
    assert not low.overlaps(high)


_CURVE = {"curve": [1.0, 0.5, 0.2], "auc": 0.4}


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.sample_panel(np.zeros((4, 4, 1)), {"shap": _heat()}, "b", "a", True),
        lambda: plots.cam_grid(np.zeros((2, 4, 4, 1)), np.ones((2, 4, 4)), ["a", "b"], [0, 1]),
        lambda: plots.deletion_plot(
            {"fractions": [0, 0.5, 1], "random": _CURVE, "methods": {"shap": _CURVE}}
        ),
    ],
    ids=["sample_panel", "cam_grid", "deletion_plot"],
)
def test_no_text_of_a_figure_is_under_9_points(monkeypatch, draw):
    """At 7-8 pt, panel titles were about 5 px high where the dashboard shrinks the figure."""
    monkeypatch.setattr(plots, "png_bytes", lambda fig: fig)
    texts = [t for t in draw().findobj(Text) if t.get_text() and t.get_visible()]
    assert min(t.get_fontsize() for t in texts) >= 9


def test_the_longest_captions_of_a_grad_cam_grid_do_not_overlap(monkeypatch):
    monkeypatch.setattr(plots, "png_bytes", lambda fig: fig)
    caption = "✗ true malignant\ndecided: benign\n(P(malignant) 0.30 < threshold 0.863)"
    fig = plots.cam_grid(np.zeros((2, 4, 4, 1)), np.ones((2, 4, 4)), [caption] * 2, [1, 1])
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    left, right = (ax.title.get_window_extent(renderer) for ax in fig.axes[:2])
    assert not left.overlaps(right)


def test_the_channel_plots_methods_differ_by_hatch_as_well_as_colour(monkeypatch):
    """WCAG 1.4.1; the legend shows the hatches too."""
    monkeypatch.setattr(plots, "png_bytes", lambda fig: fig)
    shares = {"r": 0.3, "g": 0.7}
    ax = plots.channel_plot({"shap": shares, "integrated_gradients": shares}).axes[0]
    hatches = [{bar.get_hatch() for bar in bars} for bars in ax.containers]
    assert len(hatches) == 2 and all(len(h) == 1 for h in hatches) and hatches[0] != hatches[1]
    assert [p.get_hatch() for p in ax.get_legend().get_patches()] == [h.pop() for h in hatches]
