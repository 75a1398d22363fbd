"""The model's view of the test split: a 2-D t-SNE map of its penultimate features.

Written by every explanation as ``embedding.json`` so that the dashboard only reads artifacts:
``{"method", "perplexity", "seed", "n", "n_test", "class_names", "points": [{"test_index",
"file", "x", "y", "true_label", "predicted_label", "confidence", "correct"}]}``.
"""

from collections.abc import Callable

import numpy as np
from sklearn.manifold import TSNE
from torch import nn

from common import InvalidInput
from runs import Preprocessing, inference

MAX_POINTS = 300
MIN_POINTS = 5


def sample_for_embedding(labels: np.ndarray, n: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """Up to ``n`` test indices, stratified by class so that small classes are on the map."""
    if len(labels) <= n:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    # Each class gets its share of n, at least one image; the rest fill up at random.
    quota = np.maximum(1, np.floor(n * counts / counts.sum()).astype(int))
    chosen = [
        rng.choice(np.flatnonzero(labels == c), min(q, k), replace=False)
        for c, q, k in zip(classes, quota, counts, strict=True)
    ]
    return np.sort(np.concatenate(chosen))[:n]


def tsne_points(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """2-D t-SNE coordinates of ``features`` (``N×F``) and the perplexity used."""
    if len(features) < MIN_POINTS:
        raise InvalidInput(f"an embedding map needs at least {MIN_POINTS} test images")
    perplexity = float(min(30, (len(features) - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    return xy, perplexity


def embedding_report(
    model: nn.Module,
    pp: Preprocessing,
    images: np.ndarray,
    labels: np.ndarray,
    files: list[str] | None = None,
    n: int = MAX_POINTS,
    seed: int = 0,
    decide: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict | None:
    """The ``embedding.json`` content for a test split, or None when it has too few images.

    Args:
        images: uint8 ``N×H×W×C`` test images; labels: their classes.
        files: File name per image, when known.
        decide: Probabilities → the class each image is decided as (default the most probable).
    """
    index = sample_for_embedding(labels, n, seed)
    if len(index) < MIN_POINTS:
        return None
    features = inference.predict(model, inference.batches(images[index], pp), "embedding")
    probs = inference.predict(model, inference.batches(images[index], pp)).numpy()
    xy, perplexity = tsne_points(features.numpy(), seed)
    pred = probs.argmax(1) if decide is None else decide(probs)
    names = list(pp.class_names)
    points = [
        {
            "test_index": int(i),
            "file": files[i] if files else None,
            "x": float(xy[k, 0]),
            "y": float(xy[k, 1]),
            "true_label": names[int(labels[i])],
            "predicted_label": names[int(pred[k])],
            "confidence": float(probs[k, pred[k]]),
            "correct": bool(pred[k] == labels[i]),
        }
        for k, i in enumerate(index)
    ]
    return {
        "method": "t-SNE of the penultimate features (model.embed)",
        "perplexity": perplexity,
        "seed": seed,
        "n": len(points),
        "n_test": len(labels),
        "class_names": names,
        "points": points,
    }
