"""Attribution methods on a classifier that takes float ``N×C×H×W`` images in ``[0, 1]``.

Every function explains one target class per image (normally the predicted one) and runs on the
CPU. Integrated Gradients and SHAP return ``N×C×H×W`` values (the input's shape); Grad-CAM returns
``N×1×H×W`` (one map, upsampled from the last convolutional block to the input size).
"""

from typing import Literal, get_args

import numpy as np
import shap
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
from torch import nn

Method = Literal["shap", "integrated_gradients", "gradcam"]
METHODS: tuple[str, ...] = get_args(Method)
BASELINES = ("blur", "mean", "zeros")


def make_baseline(model: nn.Module, x: torch.Tensor, kind: str = "blur") -> torch.Tensor:
    """The "information removed" version of ``x``, shared by IG and the deletion curves.

    Args:
        model: The classifier; ``kind="mean"`` uses its normalization mean (a neutral grey).
        x: Images ``N×C×H×W`` in ``[0, 1]``.
        kind: ``"blur"`` (heavy Gaussian blur: keeps colours, removes shapes), ``"mean"`` (the
            training mean colour, i.e. zero after the model's normalization) or ``"zeros"``.
    """
    if kind == "blur":
        import torchvision.transforms.functional as TF  # imported when used: ~1.5 s

        size = max(x.shape[-2:])
        sigma = max(size / 8.0, 1.0)
        kernel = int(2 * round(2 * sigma) + 1)
        kernel = min(kernel, 2 * (min(x.shape[-2:]) // 2) - 1)
        return TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])
    if kind == "mean":
        mean = getattr(model, "mean", None)
        if mean is None:
            return torch.full_like(x, 0.5)
        return mean.to(x.dtype).expand_as(x).clone()
    if kind == "zeros":
        return torch.zeros_like(x)
    raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    n_steps: int = 50,
    internal_batch_size: int | None = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated Gradients of the target logits with Captum.

    Args:
        internal_batch_size: Interpolated images per forward/backward pass; bounds memory.
            ``None`` evaluates all ``n_steps × N`` images at once.

    Returns:
        The attributions (``N×C×H×W``) and the convergence delta per image: the gap between the
        attributions' sum and ``f(x) − f(baseline)`` (small when ``n_steps`` is enough).
    """
    ig = IntegratedGradients(model)
    # Captum needs at least one step of every image per pass: chunk the images to keep the bound.
    chunk = len(x) if internal_batch_size is None else max(1, min(len(x), internal_batch_size))
    values, deltas = [], []
    for start in range(0, len(x), chunk):
        part = slice(start, start + chunk)
        attributions, delta = ig.attribute(
            x[part],
            baselines=baseline[part],
            target=target[part],
            n_steps=n_steps,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )
        values.append(attributions.detach())
        deltas.append(delta.detach())
    return torch.cat(values), torch.cat(deltas)


def shap_values(
    model: nn.Module,
    x: torch.Tensor,
    background: torch.Tensor,
    nsamples: int = 50,
    seed: int = 0,
    batch_size: int = 50,
    target: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected-gradients SHAP values of the top-ranked (predicted) logit of each image, or of
    ``target``'s logit (a class per image).

    Uses ``shap.GradientExplainer`` (``DeepExplainer`` breaks on torchvision models).

    Returns:
        The SHAP values (``N×C×H×W``) and the class each image's values explain (``N``).
    """
    explainer = shap.GradientExplainer(model, background, batch_size=batch_size)
    if target is not None:  # every output (N×C×H×W×K), then each image's own class
        every = np.asarray(explainer.shap_values(x, nsamples=nsamples, rseed=seed))
        picked = every[np.arange(len(x)), ..., target.numpy()]
        return torch.from_numpy(picked).float(), target.long()
    values, ranked = explainer.shap_values(x, nsamples=nsamples, ranked_outputs=1, rseed=seed)
    values = torch.from_numpy(np.asarray(values)[..., 0]).float()
    return values, torch.as_tensor(np.asarray(ranked))[:, 0].long()


def gradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM on ``model.target_layers``, rectified and bilinearly upsampled to ``H×W``.

    A classifier has one such layer; for an ensemble the map is the mean of one Grad-CAM per
    member's layer, each taken through the ensemble's output.
    """
    layers = model.target_layers
    total = None
    for layer in layers:
        maps = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
        maps = LayerAttribution.interpolate(maps.detach(), tuple(x.shape[-2:]), "bilinear")
        total = maps if total is None else total + maps
    return (total / len(layers)).clamp_min(0)


def pixel_importance(values: torch.Tensor) -> torch.Tensor:
    """Per-pixel importance ``N×H×W`` of an attribution: the signed sum over channels.

    Positive means evidence for the explained class; removing the largest values first should
    make its probability fall fastest.
    """
    return values.sum(dim=1)


def channel_importance(values: torch.Tensor) -> np.ndarray:
    """Share of the absolute attribution mass per input channel over all images (sums to 1)."""
    mass = values.abs().sum(dim=(0, 2, 3)).double()
    total = float(mass.sum())
    if total == 0.0:
        return np.full(values.shape[1], 1.0 / values.shape[1])
    return (mass / total).numpy()
