"""Model views computed on demand (no Streamlit): t-SNE of penultimate features, Grad-CAM maps."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.manifold import TSNE

from common import InvalidInput, confine
from runs import Preprocessing, get_client, load_model, load_preprocessing

MAX_SAMPLES = 300


def find_data(params: dict[str, str], data_dir: Path) -> Path:
    """The run's dataset on this machine: its ``dataset_source``/``data_dir`` param, under
    ``DATA_DIR`` (as given, or by its last name there); the one confinement rule of
    ``common.confine`` applies, so a run cannot make the dashboard read other folders."""
    for key in ("dataset_source", "data_dir"):
        value = params.get(key)
        if not value:
            continue
        for candidate in (value, Path(value).name):
            try:
                path = confine(candidate, data_dir, key, "DATA_DIR")
            except InvalidInput:
                continue
            if path.exists():
                return path
    raise InvalidInput(
        "the run's test images are not under DATA_DIR on this machine (params "
        f"dataset_source/data_dir: "
        f"{params.get('dataset_source') or params.get('data_dir') or 'not logged'}); put the "
        f"dataset under DATA_DIR ({data_dir}) to see the embedding and activation maps."
    )


def test_sample(path: Path, pp: Preprocessing, n: int, seed: int = 0):
    """Up to ``n`` test images (uint8 N×H×W×C) and labels, a fixed random sample."""
    from dataloader import load_dataset

    ds = load_dataset(path, image_size=pp.image_size, channels=pp.channels, splits=("test",))
    if ds.test is None or len(ds.test.labels) == 0:
        raise InvalidInput(f"{path} has no test images")
    rng = np.random.default_rng(seed)
    take = np.sort(rng.permutation(len(ds.test.labels))[:n])
    return ds.test.images[take], ds.test.labels[take]


def features(model, x: torch.Tensor, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features ``N×F`` and predicted classes of inputs ``x`` in [0, 1]."""
    feats, preds = [], []
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            f = model.embed(x[start : start + batch])
            feats.append(f.numpy())
            preds.append(model.head(f).argmax(1).numpy())
    return np.concatenate(feats), np.concatenate(preds)


def tsne_frame(
    feats: np.ndarray, labels: np.ndarray, preds: np.ndarray, class_names: list[str], seed: int = 0
) -> pd.DataFrame:
    """2-D t-SNE of ``feats``: columns x, y, true, predicted, outcome."""
    if len(feats) < 5:
        raise InvalidInput(f"t-SNE needs at least 5 test images, got {len(feats)}")
    perplexity = float(min(30, (len(feats) - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)
    names = np.asarray(class_names, dtype=object)
    return pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "true": names[labels],
            "predicted": names[preds],
            "outcome": np.where(labels == preds, "correct", "wrong"),
        }
    )


def gradcam(model, x: torch.Tensor, target: np.ndarray) -> np.ndarray:
    """Grad-CAM of ``target`` classes at ``model.target_layer``, upsampled: ``N×H×W`` in [0, 1]."""
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(model, model.target_layer).attribute(
        x, target=torch.as_tensor(target), relu_attributions=True
    )
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")[:, 0]
    cam = cam.detach().numpy()
    peak = cam.reshape(len(cam), -1).max(1).reshape(-1, 1, 1)
    return cam / np.where(peak > 0, peak, 1.0)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``image`` (uint8 H×W×C) blended with the ``cam`` heat map in the jet colormap."""
    from matplotlib import colormaps

    heat = colormaps["jet"](cam)[..., :3]
    base = image.astype(np.float32) / 255.0
    if base.shape[-1] == 1:
        base = np.repeat(base, 3, axis=-1)
    return (((1 - alpha) * base + alpha * heat).clip(0, 1) * 255).astype(np.uint8)


def across_classes(labels: np.ndarray, preds: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` positions taking each true class in turn, misclassified images first."""
    queues = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        wrong = members[preds[members] != cls]
        queues.append([*wrong, *members[preds[members] == cls]])
    picked: list[int] = []
    while len(picked) < k and any(queues):
        for queue in queues:
            if queue and len(picked) < k:
                picked.append(int(queue.pop(0)))
    return np.asarray(picked, dtype=np.int64)


def model_views(uri: str, run_id: str, params: dict, data_dir: Path, n: int = MAX_SAMPLES):
    """Everything the Visualizations tab computes for a run, in one pass over a test sample.

    Returns:
        ``(tsne, cams)``: the t-SNE frame and a list of ``(overlay image, caption)`` for up to
        eight images.
    """
    torch.set_num_threads(1)
    pp = load_preprocessing(get_client(uri), run_id)
    model = load_model(run_id, uri)
    images, labels = test_sample(find_data(params, data_dir), pp, n)
    x = pp.to_tensor(images)
    feats, preds = features(model, x)
    frame = tsne_frame(feats, labels, preds, pp.class_names)
    picked = across_classes(labels, preds, 8)
    cams = gradcam(model, x[picked], preds[picked])
    shown = []
    for j, i in enumerate(picked):
        mark = "✓" if preds[i] == labels[i] else "✗"
        caption = f"{mark} true {pp.class_names[labels[i]]}, predicted {pp.class_names[preds[i]]}"
        shown.append((overlay(images[i], cams[j]), caption))
    return frame, shown
