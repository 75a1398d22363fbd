"""Writing a MedMNIST ``.npz`` as an image folder (``python -m dataloader import-medmnist``)."""

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from common import atomic_replace_dir
from dataloader.dataset import load_dataset
from dataloader.errors import DataError
from dataloader.imageset import ImageSet


def _check_names(names: Sequence[str], n_classes: int | None = None) -> None:
    """Folder names for labels 0.. of a file with ``n_classes`` classes: one distinct name each."""
    if n_classes is not None and len(names) != n_classes:
        raise DataError(
            f"{len(names)} class names were given ({', '.join(names)}) for a file with "
            f"{n_classes} classes (labels 0..{n_classes - 1}); pass one name per class"
        )
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise DataError(
            f"class name {repeated[0]!r} is given twice; two labels would share one folder and "
            "become one class: pass a distinct name per label"
        )
    for name in names:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise DataError(
                f"class name {name!r} cannot be a folder name; use names without slashes that "
                "do not start with a dot"
            )


def _write(images: ImageSet, folder: Path, names: list[str], prefix: str) -> int:
    # Numbered by the image's index in the file's split, from 0, as the evaluator's `index`,
    # the explainer's `test_index` and the trainer's warnings (`test[7]`) count them.
    for i, (image, label) in enumerate(zip(images.images, images.labels, strict=True)):
        target = folder / names[label]
        target.mkdir(parents=True, exist_ok=True)
        pixels = image[..., 0] if image.shape[-1] == 1 else image
        Image.fromarray(pixels).save(target / f"{prefix}_{i:05d}.png")
    return len(images)


def import_medmnist(
    npz: str | os.PathLike,
    out: str | os.PathLike,
    keep_val: bool = False,
    class_names: Sequence[str] | None = None,
) -> dict[str, int]:
    """Write ``npz`` as ``out/train/<class>/*.png`` and ``out/test/<class>/*.png``.

    The file's val images go into ``train/`` (named ``val_NNNNN.png``) unless ``keep_val``, which
    writes them to ``out/val/``. Folders are built aside and moved into place whole.

    Returns:
        Images written per split folder.

    Raises:
        DataError: For an unreadable ``.npz``, bad class names, or an ``out`` that already holds
            a dataset.
    """
    npz, out = Path(npz), Path(out)
    if npz.is_dir() or (npz.exists() and npz.suffix.lower() != ".npz"):
        raise DataError(f"{npz} is not a .npz file; pass a MedMNIST .npz file")
    if class_names is not None:
        _check_names(class_names)  # before loading: a repeated name is not the file's fault
    ds = load_dataset(npz, val_fraction=0.0, class_names=class_names)
    labels = [s.labels for s in (ds.train, ds.val, ds.test) if s is not None and len(s.labels)]
    _check_names(ds.class_names, int(max(int(x.max()) for x in labels)) + 1 if labels else None)
    for split in ("train", "val", "test"):
        if (out / split).is_dir() and any((out / split).iterdir()):
            raise DataError(
                f"{out / split} already holds images; choose an empty folder for --out or move "
                "that dataset away first"
            )
    counts: dict[str, int] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out, prefix=".import-") as tmp:
            counts["train"] = _write(ds.train, Path(tmp) / "train", ds.class_names, "train")
            if ds.val is not None:
                target = "val" if keep_val else "train"
                counts[target] = counts.get(target, 0) + _write(
                    ds.val, Path(tmp) / target, ds.class_names, "val"
                )
            counts["test"] = _write(ds.test, Path(tmp) / "test", ds.class_names, "test")
            for split in counts:
                atomic_replace_dir(Path(tmp) / split, out / split)
    except OSError as exc:
        raise DataError(f"cannot write the images to {out}: {exc.strerror or exc}") from exc
    return counts
