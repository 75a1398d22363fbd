"""Attribution methods on a classifier that takes float ``N×C×H×W`` images in ``[0, 1]``.

Every function explains one target class per image (normally the predicted one) and runs on the
CPU. Integrated Gradients and SHAP return ``N×C×H×W`` values (the input's shape); Grad-CAM returns
``N×1×H×W`` (one map, upsampled from the last convolutional block to the input size).

``METHOD_TABLE`` (at the end) is the one list of methods: what each computes and how its values
are read, drawn and written. Adding a method is an entry there, its compute function, and its
title in ``runs.contract.ATTRIBUTION_TITLES``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shap
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
from torch import nn

from runs import contract

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


# --- The table of methods ---------------------------------------------------------------------

IG_DELTA = "ig_convergence_delta"  # Integrated Gradients' extra array in its ``.npz``


@dataclass(frozen=True)
class Inputs:
    """What a method's ``compute`` may use: the images, the classes to explain, the settings."""

    model: nn.Module
    x: torch.Tensor  # N×C×H×W in [0, 1]
    target: torch.Tensor  # the class to explain per image
    top: torch.Tensor  # the most probable class per image
    baseline: torch.Tensor  # the "information removed" images (``make_baseline``)
    background: torch.Tensor  # reference images of the same data set
    seed: int = 0
    ig_steps: int = 50
    shap_nsamples: int = 50
    internal_batch_size: int | None = 32


@dataclass(frozen=True)
class Across:
    """What a method's figure across the samples is drawn from (``Summary.draw``)."""

    images: np.ndarray  # N×H×W×C in [0, 1]
    values: np.ndarray  # the method's raw values
    captions: list[str]  # per sample: ✓/✗, the true class and the decision explained
    wrong: list[bool]  # per sample: misclassified
    channels: list[str]  # name of each input channel
    labels: list[str]  # the explained class of each sample
    explained_class: str  # how that class was chosen (``settings.explained_class``)


@dataclass(frozen=True)
class Summary:
    """A method's figure across the samples: its file, its description in ``index.json``."""

    file: str
    description: str
    draw: Callable[[Across], bytes]


@dataclass(frozen=True)
class Method:
    """One attribution method of the explainer.

    Attributes:
        name: Its key in requests, file names (``<name>.npz``) and JSON.
        signed: Values for (+) and against (−) the class, drawn centred at 0; else non-negative
            relevance, drawn from 0 to its maximum.
        per_channel: ``N×C×H×W`` values (a share per input channel in ``channel_importance``);
            else one ``N×1×H×W`` map.
        compute: ``compute(inputs)`` → the values and any extra arrays saved beside them.
        uses_background: Compares each image with the background images (its map's title says
            with how many).
        summary: Its figure across the samples, if it has one.
    """

    name: str
    signed: bool
    per_channel: bool
    compute: Callable[[Inputs], tuple[torch.Tensor, dict[str, np.ndarray]]]
    uses_background: bool = False
    summary: Summary | None = None

    def __post_init__(self) -> None:
        if self.name not in contract.ATTRIBUTION_TITLES:
            raise ValueError(f"method {self.name!r} has no title in ATTRIBUTION_TITLES")

    @property
    def title(self) -> str:
        """How figures and tables name it (``Integrated Gradients``)."""
        return contract.ATTRIBUTION_TITLES[self.name]

    @property
    def shape(self) -> str:
        """Its values' shape in words: ``N×C×H×W`` or ``N×1×H×W``."""
        return "N×C×H×W" if self.per_channel else "N×1×H×W"


def _integrated_gradients(a: Inputs) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    values, delta = integrated_gradients(
        a.model, a.x, a.target, a.baseline, a.ig_steps, a.internal_batch_size
    )
    return values, {IG_DELTA: delta.numpy()}


def _shap(a: Inputs) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    target = None if torch.equal(a.target, a.top) else a.target  # None: SHAP's own ranking
    values, _ = shap_values(
        a.model, a.x, a.background, nsamples=a.shap_nsamples, seed=a.seed, target=target
    )
    return values, {}


def _gradcam(a: Inputs) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    return gradcam(a.model, a.x, a.target), {}


# The figures are drawn by ``explainer.plots``, which reads this table: imported when drawn.
def _cam_figure(s: Across) -> bytes:
    from explainer import plots

    return plots.cam_grid(s.images, s.values[:, 0], s.captions, s.wrong)  # N×1×H×W → N×H×W


def _shap_figure(s: Across) -> bytes:
    from explainer import plots

    return plots.shap_summary(s.values, s.channels, s.labels, s.explained_class)


# In the canonical order: requests, files and figures list the methods in it.
METHOD_TABLE: tuple[Method, ...] = (
    Method(
        "shap",
        signed=True,
        per_channel=True,
        compute=_shap,
        uses_background=True,
        summary=Summary(
            contract.SHAP_SUMMARY_PNG,
            "SHAP across samples: mean |SHAP| map, mass per channel",
            _shap_figure,
        ),
    ),
    Method("integrated_gradients", signed=True, per_channel=True, compute=_integrated_gradients),
    Method(
        "gradcam",
        signed=False,
        per_channel=False,
        compute=_gradcam,
        summary=Summary(
            contract.GRADCAM_PNG,
            "Grad-CAM of the explained class at the last conv block (a coarse map: one cell per "
            "feature-map position), every explained sample, each with its scale",
            _cam_figure,
        ),
    ),
)
BY_NAME: dict[str, Method] = {m.name: m for m in METHOD_TABLE}
METHODS: tuple[str, ...] = tuple(BY_NAME)
# The names as a type: the API checks requests with it and lists them in its documentation.
MethodName = Literal[METHODS]  # a tuple subscript: Literal["shap", "integrated_gradients", ...]


def title(name: str) -> str:
    """A method's title; any other name as it is (a report of a method since removed)."""
    return contract.ATTRIBUTION_TITLES.get(name, name)


def is_signed(name: str) -> bool:
    """Whether a method's maps are signed (any name not in the table is taken as signed)."""
    return name not in BY_NAME or BY_NAME[name].signed
