"""Deletion curves: how fast the explained class's probability falls as the "most important"
pixels are removed, against removing pixels in random order.

A removed pixel takes the baseline's value (all channels). The area under the curve (fraction
removed on x, probability on y) is lower for a map that points at what the model really uses; a
map that is no better than random scores about the random order's area.
"""

import numpy as np
import torch
from sklearn.metrics import auc
from torch import nn


def _order_ranks(importance: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rank of every pixel (0 = removed first), most important first, ties broken randomly."""
    n, hw = importance.shape[0], importance[0].numel()
    flat = importance.reshape(n, hw)
    ranks = torch.empty((n, hw), dtype=torch.long)
    for i in range(n):
        perm = torch.randperm(hw, generator=generator)
        order = perm[torch.argsort(flat[i, perm], descending=True, stable=True)]
        ranks[i, order] = torch.arange(hw)
    return ranks.reshape(importance.shape)


def _random_ranks(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    n, hw = shape[0], int(np.prod(shape[1:]))
    return torch.stack([torch.randperm(hw, generator=generator) for _ in range(n)]).reshape(shape)


@torch.no_grad()
def deletion_curves(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    ranks: torch.Tensor,
    n_steps: int = 20,
) -> np.ndarray:
    """Probability of ``target`` after removing ``0, 1/n_steps, …, 1`` of the pixels.

    Args:
        x: Images ``N×C×H×W`` in ``[0, 1]``.
        target: Class per image whose probability is tracked.
        baseline: Replacement values for removed pixels, the shape of ``x``.
        ranks: ``N×H×W`` removal rank of each pixel (0 = removed first).
        n_steps: Number of deletion steps after the intact image.

    Returns:
        ``N×(n_steps+1)`` probabilities.
    """
    hw = ranks[0].numel()
    counts = torch.round(torch.linspace(0, 1, n_steps + 1) * hw).long()
    curves = np.empty((len(x), n_steps + 1))
    for i in range(len(x)):
        removed = (ranks[i].unsqueeze(0) < counts.view(-1, 1, 1)).unsqueeze(1).float()
        batch = x[i] * (1 - removed) + baseline[i] * removed
        probs = torch.softmax(model(batch), dim=1)[:, int(target[i])]
        curves[i] = probs.numpy()
    return curves


def _area(fractions: np.ndarray, curves: np.ndarray) -> np.ndarray:
    return np.array([auc(fractions, c) for c in curves])


def deletion_report(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    importances: dict[str, torch.Tensor],
    n_steps: int = 20,
    seed: int = 0,
    n_random: int = 3,
) -> dict:
    """Deletion AUC of every method against the random-order baseline.

    Args:
        importances: Method name → per-pixel importance ``N×H×W`` (higher = removed earlier).
        n_random: Random orders averaged for the baseline curve of each image.

    Returns:
        A JSON-able dict: ``fractions``, ``random`` (``auc``, ``auc_per_sample``, ``curve``) and
        ``methods`` (per method ``auc``, ``auc_per_sample``, ``curve``, ``random_auc`` and
        ``score = random_auc − auc``: positive when the map beats random, the higher the better).
    """
    generator = torch.Generator().manual_seed(seed)
    fractions = np.linspace(0, 1, n_steps + 1)
    shape = importances[next(iter(importances))].shape if importances else x[:, 0].shape
    random_curves = np.mean(
        [
            deletion_curves(model, x, target, baseline, _random_ranks(shape, generator), n_steps)
            for _ in range(n_random)
        ],
        axis=0,
    )
    random_aucs = _area(fractions, random_curves)
    report = {
        "fractions": fractions.tolist(),
        "n_steps": n_steps,
        "n_random": n_random,
        "random": {
            "auc": float(random_aucs.mean()),
            "auc_per_sample": random_aucs.tolist(),
            "curve": random_curves.mean(axis=0).tolist(),
        },
        "methods": {},
    }
    for name, importance in importances.items():
        ranks = _order_ranks(importance, generator)
        curves = deletion_curves(model, x, target, baseline, ranks, n_steps)
        aucs = _area(fractions, curves)
        report["methods"][name] = {
            "auc": float(aucs.mean()),
            "auc_per_sample": aucs.tolist(),
            "curve": curves.mean(axis=0).tolist(),
            "random_auc": float(random_aucs.mean()),
            "score": float(random_aucs.mean() - aucs.mean()),
            "beats_random_fraction": float(np.mean(aucs < random_aucs)),
        }
    return report
