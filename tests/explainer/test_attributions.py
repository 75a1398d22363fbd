"""Attribution methods on a model trained on the synthetic lesions."""

import numpy as np
import pytest
import torch

from explainer import attributions
from runs import inference


@pytest.fixture(scope="module")
def batch(trained_model, lesions):
    _, test = lesions
    x = test.x[:6]
    target = inference.predict(trained_model, inference.batches(x)).argmax(dim=1)
    return x, target


def test_integrated_gradients_have_the_input_shape(trained_model, batch):
    x, target = batch
    base = attributions.make_baseline(trained_model, x, "mean")
    values, delta = attributions.integrated_gradients(trained_model, x, target, base, n_steps=8)
    assert values.shape == x.shape
    assert delta.shape == (len(x),)


def test_shap_values_have_the_input_shape_and_explain_the_predicted_class(
    trained_model, batch, lesions
):
    x, target = batch
    background = lesions[1].x[6:14]
    values, explained = attributions.shap_values(trained_model, x, background, nsamples=8)
    assert values.shape == x.shape
    assert torch.equal(explained, target)


def test_gradcam_is_one_non_negative_map_at_the_input_size(trained_model, batch):
    x, target = batch
    maps = attributions.gradcam(trained_model, x, target)
    assert maps.shape == (len(x), 1, *x.shape[-2:])
    assert (maps >= 0).all()
    assert (maps.flatten(1).max(dim=1).values > 0).all()


@pytest.mark.parametrize("kind", ["mean", "blur", "zeros"])
def test_integrated_gradients_are_complete(trained_model, batch, kind):
    """The attributions add up to f(x) − f(baseline) of the explained logit."""
    x, target = batch[0][:3], batch[1][:3]
    base = attributions.make_baseline(trained_model, x, kind)
    values, _ = attributions.integrated_gradients(trained_model, x, target, base, n_steps=64)
    with torch.no_grad():
        rows = torch.arange(len(x))
        gap = trained_model(x)[rows, target] - trained_model(base)[rows, target]
    sums = values.sum(dim=(1, 2, 3))
    assert torch.allclose(sums, gap, rtol=0.02, atol=0.02), (sums, gap)


def test_internal_batching_does_not_change_integrated_gradients(trained_model, batch):
    x, target = batch
    base = attributions.make_baseline(trained_model, x, "mean")
    whole, _ = attributions.integrated_gradients(trained_model, x, target, base, 16, None)
    chunked, _ = attributions.integrated_gradients(trained_model, x, target, base, 16, 4)
    assert torch.allclose(whole, chunked, atol=1e-5)


def test_gradcam_peaks_inside_the_lesion_more_often_than_chance(trained_model, lesions):
    _, test = lesions
    target = inference.predict(trained_model, inference.batches(test.x)).argmax(dim=1)
    maps = attributions.gradcam(trained_model, test.x, target)[:, 0].numpy()
    peaks = maps.reshape(len(maps), -1).argmax(axis=1)
    hit_rate = np.mean([test.masks[i].flat[p] for i, p in enumerate(peaks)])
    chance = test.masks.mean()  # the lesion's share of the image
    print(f"Grad-CAM peak in lesion: {hit_rate:.2f} (chance {chance:.2f})")
    assert hit_rate > max(2 * chance, 0.5), (hit_rate, chance)


def test_channel_importance_is_the_share_of_attribution_mass_per_channel():
    values = torch.zeros(2, 3, 4, 4)
    values[:, 0] = 1.0
    values[:, 2] = -3.0
    shares = attributions.channel_importance(values)
    assert np.allclose(shares, [0.25, 0.0, 0.75])


def test_unknown_baseline_is_rejected_with_the_known_ones(trained_model, batch):
    with pytest.raises(ValueError, match="blur, mean, zeros"):
        attributions.make_baseline(trained_model, batch[0], "noise")


def test_gradcam_of_an_ensemble_averages_one_map_per_member(trained_model, batch):
    from captum.attr import LayerAttribution, LayerGradCam

    from runs import Ensemble, build_model

    x, target = batch
    torch.manual_seed(1)
    other = build_model("smallcnn", trained_model.in_channels, trained_model.num_classes)
    ensemble = Ensemble([trained_model, other.eval()]).eval()

    def one(layer):
        maps = LayerGradCam(ensemble, layer).attribute(x, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(maps.detach(), tuple(x.shape[-2:]), "bilinear")

    first, second = (one(layer) for layer in ensemble.target_layers)
    maps = attributions.gradcam(ensemble, x, target)
    assert torch.allclose(maps, (first + second) / 2, atol=1e-6)
    assert not torch.allclose(maps, first, atol=1e-3)
