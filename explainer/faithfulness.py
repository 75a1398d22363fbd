"""Deletion curves: how fast the explained class's probability falls as the "most important"
regions are removed, against removing regions in random order.

Regions are square patches (about an 8×8 grid over the image, the region perturbation of Samek et
al., 2017): deleting single pixels in random order sprinkles noise over the whole image, which
a CNN often reacts to more than to losing the object, so pixel-level random deletion is an unfair
yardstick for smooth maps such as Grad-CAM. A removed patch takes the baseline's values (all
channels). The area under the curve (fraction removed on x, probability on y) is lower for a map
that points at what the model really uses; a map no better than random scores about the random
order's area.

A method's ``score`` (random-order AUC − AUC, averaged over the explained images) comes with a
95 % percentile-bootstrap interval over those images (``scipy.stats.bootstrap``; from 5 images
on): with the usual 8 images an interval that reaches below 0 says the map is not shown to beat
random (a percentile interval of 8 values is, if anything, narrow).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import bootstrap
from sklearn.metrics import auc
from torch import nn

from runs import CONFIDENCE, schemas

GRID = 8
N_RESAMPLES = 2000
MIN_IMAGES = schemas.FAITHFULNESS_MIN_IMAGES  # fewer explained images get no interval


def patch_size(height: int, width: int, grid: int = GRID) -> int:
    """Side of the square regions that cover the shorter side of the image in ``grid`` steps."""
    return max(1, math.ceil(min(height, width) / grid))


def _order_ranks(importance: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rank of every region (0 = removed first), most important first, ties broken randomly."""
    n, cells = importance.shape[0], importance[0].numel()
    flat = importance.reshape(n, cells)
    ranks = torch.empty((n, cells), dtype=torch.long)
    for i in range(n):
        perm = torch.randperm(cells, generator=generator)
        order = perm[torch.argsort(flat[i, perm], descending=True, stable=True)]
        ranks[i, order] = torch.arange(cells)
    return ranks.reshape(importance.shape)


def _random_ranks(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    n, cells = shape[0], int(np.prod(shape[1:]))
    orders = [torch.randperm(cells, generator=generator) for _ in range(n)]
    return torch.stack(orders).reshape(shape)


@torch.no_grad()
def deletion_curves(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    ranks: torch.Tensor,
    n_steps: int = 20,
    patch: int = 1,
) -> np.ndarray:
    """Probability of ``target`` after removing ``0, 1/n_steps, …, 1`` of the regions.

    Args:
        x: Images ``N×C×H×W`` in ``[0, 1]``.
        target: Class per image whose probability is tracked.
        baseline: Replacement values for removed pixels, the shape of ``x``.
        ranks: ``N×h×w`` removal rank of each ``patch×patch`` region (0 = removed first), with
            ``h = ceil(H / patch)`` and ``w = ceil(W / patch)``.
        n_steps: Number of deletion steps after the intact image.

    Returns:
        ``N×(n_steps+1)`` probabilities.
    """
    height, width = x.shape[-2:]
    counts = torch.round(torch.linspace(0, 1, n_steps + 1) * ranks[0].numel()).long()
    curves = np.empty((len(x), n_steps + 1))
    for i in range(len(x)):
        removed = ranks[i].unsqueeze(0) < counts.view(-1, 1, 1)
        removed = removed.repeat_interleave(patch, 1).repeat_interleave(patch, 2)
        removed = removed[:, :height, :width].unsqueeze(1).float()
        batch = x[i] * (1 - removed) + baseline[i] * removed
        curves[i] = torch.softmax(model(batch), dim=1)[:, int(target[i])].numpy()
    return curves


def _area(fractions: np.ndarray, curves: np.ndarray) -> np.ndarray:
    return np.array([auc(fractions, c) for c in curves])


def score_interval(gains: np.ndarray, seed: int = 0) -> tuple[float | None, float | None]:
    """95 % percentile-bootstrap interval of the mean of ``gains`` (random-order AUC − AUC per
    image); ``(None, None)`` below ``MIN_IMAGES`` images, whose resamples are too few to give
    one (with 2 images it is their minimum and maximum). Equal gains give a zero-width one."""
    if len(gains) < MIN_IMAGES:
        return None, None
    if np.ptp(gains) == 0:  # scipy refuses a degenerate sample
        return float(gains[0]), float(gains[0])
    res = bootstrap(
        (gains,),
        np.mean,
        n_resamples=N_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return float(low), float(high)


def deletion_report(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    importances: dict[str, torch.Tensor],
    n_steps: int = 20,
    seed: int = 0,
    n_random: int = 3,
    patch: int | None = None,
) -> dict:
    """Deletion AUC of every method against the random-order baseline.

    Args:
        importances: Method name → per-pixel importance ``N×H×W`` (higher = removed earlier);
            a region's importance is the mean over its pixels.
        n_random: Random orders averaged for the baseline curve of each image.
        patch: Side of the square regions; default ``patch_size(H, W)``.

    Returns:
        A JSON-able dict: ``fractions``, ``patch``, ``random`` (``auc``, ``auc_per_sample``,
        ``curve``) and ``methods`` (per method ``auc``, ``auc_per_sample``, ``curve``,
        ``random_auc``, ``beats_random_fraction``, ``score = random_auc − auc``: positive
        when the map beats random, the higher the better, and its 95 % interval over the images,
        ``score_ci_low``/``score_ci_high``) and ``n_samples``.
    """
    patch = patch or patch_size(*x.shape[-2:])
    generator = torch.Generator().manual_seed(seed)
    fractions = np.linspace(0, 1, n_steps + 1)
    grid = (len(x), math.ceil(x.shape[-2] / patch), math.ceil(x.shape[-1] / patch))

    def curves(ranks: torch.Tensor) -> np.ndarray:
        return deletion_curves(model, x, target, baseline, ranks, n_steps, patch)

    random_curves = np.mean(
        [curves(_random_ranks(torch.Size(grid), generator)) for _ in range(n_random)], axis=0
    )
    random_aucs = _area(fractions, random_curves)
    report = {
        "fractions": fractions.tolist(),
        "n_steps": n_steps,
        "n_random": n_random,
        "patch": patch,
        "n_samples": len(x),
        "random": {
            "auc": float(random_aucs.mean()),
            "auc_per_sample": random_aucs.tolist(),
            "curve": random_curves.mean(axis=0).tolist(),
        },
        "methods": {},
    }
    for name, importance in importances.items():
        pooled = F.avg_pool2d(importance.unsqueeze(1).float(), patch, ceil_mode=True).squeeze(1)
        method_curves = curves(_order_ranks(pooled, generator))
        aucs = _area(fractions, method_curves)
        low, high = score_interval(random_aucs - aucs, seed)
        report["methods"][name] = {
            "auc": float(aucs.mean()),
            "auc_per_sample": aucs.tolist(),
            "curve": method_curves.mean(axis=0).tolist(),
            "random_auc": float(random_aucs.mean()),
            "score": float(random_aucs.mean() - aucs.mean()),
            "score_ci_low": low,
            "score_ci_high": high,
            "beats_random_fraction": float(np.mean(aucs < random_aucs)),
        }
    return report
