"""MedMNIST ``.npz`` files: ``{train,val,test}_images`` (N×H×W or N×H×W×3) and ``_labels``."""

import hashlib
import itertools
import zipfile
from pathlib import Path

import numpy as np

from dataloader.cache import ArrayCache, make_key
from dataloader.digests import file_digest
from dataloader.errors import DataError
from dataloader.imageset import ImageSet, Loaded, native_fit
from mlpipeline_model import MAX_UPSCALE, conform, misfit

EXPECTED_KEYS = (
    "train_images, train_labels, test_images, test_labels (val_images, val_labels optional)"
)


def _images(path: Path, split: str, images: np.ndarray) -> np.ndarray:
    """Check the images array and return it as ``N×H×W×C``."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"{path}: {split}_images has shape {images.shape}; expected N×H×W (grey) or N×H×W×3"
        )
    if len(images) == 0:
        raise DataError(f"{path}: {split}_images is empty; every split needs at least one image")
    if images.dtype != np.uint8:
        raise DataError(f"{path}: {split}_images is {images.dtype}; expected uint8 pixels 0–255")
    return images


def _2d(image: np.ndarray) -> np.ndarray:
    """``H×W×1`` → ``H×W`` (what PIL expects for grey); colour unchanged."""
    return image[..., 0] if image.shape[-1] == 1 else image


def npz_labels(path: Path, split: str, labels: np.ndarray, n: int) -> np.ndarray:
    """``labels`` as one int64 class per image, or ``DataError`` saying what is wrong."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            f"{path}: {split}_labels has shape {labels.shape}; expected one class per image "
            "(N or N×1): multi-label datasets are not supported"
        )
    if len(labels) != n or not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
        raise DataError(
            f"{path}: {split}_labels must hold {n} non-negative integer classes, one per image "
            f"(got {len(labels)} of type {labels.dtype})"
        )
    return labels.astype(np.int64)


# What a file that is not a zip archive most likely is, by its first bytes.
_MAGIC = {
    # A zip's first entry starts so; is_zipfile() then failed on the directory at the end.
    b"PK\x03\x04": "a zip archive that is damaged or cut short (its end is missing); copy or "
    "download it again",
    b"\x93NUMPY": "a single NumPy array (.npy), not an archive of arrays",
    b"\x80": "a Python pickle",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "a gzip file",
    b"<": "text (HTML or XML, perhaps an error page saved by a download)",
    b"version https://git-lfs": "a Git LFS pointer, not the file itself (run git lfs pull)",
}


def check_npz_file(path: Path) -> None:
    """Raise ``DataError`` unless ``path`` is a zip archive, as every ``.npz`` is.

    ``np.load`` would otherwise try to read any other file as a pickle and answer with a
    confusing message about ``allow_pickle``.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(32)
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror}") from exc
    if is_zip:
        return
    kind = next((what for magic, what in _MAGIC.items() if head.startswith(magic)), None)
    if not head:
        kind = "empty (0 bytes)"
    raise DataError(
        f"{path} is not a .npz file (a zip archive of .npy arrays)"
        + (f": it is {kind}" if kind else f"; it starts with the bytes {head[:8]!r}")
        + f"; expected a MedMNIST file with the keys {EXPECTED_KEYS}"
    )


def _read(path: Path, splits: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``split -> (images N×H×W×C, labels N)`` for the requested splits present in the file."""
    check_npz_file(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            missing = [
                f"{s}_{part}"
                for s in splits
                if s != "val"
                for part in ("images", "labels")
                if f"{s}_{part}" not in keys
            ]
            if missing:
                raise DataError(
                    f"{path} lacks {', '.join(missing)}; expected a MedMNIST file with the keys "
                    f"{EXPECTED_KEYS} (found: {', '.join(sorted(keys)) or 'none'})"
                )
            val_keys = [k for k in ("val_images", "val_labels") if k in keys]
            if "val" in splits and len(val_keys) == 1:
                lacking = "val_labels" if val_keys == ["val_images"] else "val_images"
                raise DataError(
                    f"{path} has {val_keys[0]} but lacks {lacking}; add {lacking}, or remove "
                    f"{val_keys[0]} so that validation is carved from train "
                    f"(found: {', '.join(sorted(keys))})"
                )
            arrays = {}
            for s in splits:
                if f"{s}_images" in keys and f"{s}_labels" in keys:
                    images = _images(path, s, data[f"{s}_images"])
                    arrays[s] = (images, npz_labels(path, s, data[f"{s}_labels"], len(images)))
            return arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}); expected a "
            f"MedMNIST file with the keys {EXPECTED_KEYS}"
        ) from exc


def _check_labels_used(path: Path, arrays: dict, n_classes: int) -> None:
    """Labels 0..n_classes-1 must each label a training image (read without the model's class
    names, the labels are the classes): a gap would make a class that nothing teaches."""
    if "train" not in arrays:
        return
    used = set(np.unique(arrays["train"][1]).tolist())
    n_unused = n_classes - sum(1 for label in used if 0 <= label < n_classes)
    if n_unused:
        # Named lazily: one label of 10**12 must cost a line, not a list of every missing one.
        first = list(itertools.islice((i for i in range(n_classes) if i not in used), 10))
        more = f" and {n_unused - len(first)} more" if n_unused > len(first) else ""
        raise DataError(
            f"{path}: no training image has label {', '.join(map(str, first))}{more}, although "
            f"the labels run up to {n_classes - 1}; a class needs training images, so renumber "
            "the labels 0..K-1 without gaps (or remove the test images of classes train lacks)"
        )


def _check_fit(path: Path, natives: dict[str, tuple[int, int]], size: tuple[int, int]) -> None:
    """Refuse a split whose images (``natives[split]``, one size a split) ``misfit`` ``size``,
    as the folder loader skips such an image and the served model refuses it."""
    for split, native in natives.items():
        if not (why := misfit(native, size)):
            continue
        if len(set(natives.values())) == 1:
            raise DataError(
                f"the images of {path} do not fit the size they would be resized to: {why}; "
                "choose a size closer to theirs (the served model would refuse images of their "
                "own size)"
            )
        # The largest square up to ``size`` that every split can be resized to, if any.
        side = min(max(size), *(MAX_UPSCALE * min(n) for n in natives.values()))
        fits = all(misfit(n, (side, side)) is None for n in natives.values())
        shown = ", ".join(f"{s}_images {h}×{w}" for s, (h, w) in natives.items())
        raise DataError(
            f"{path}: the {split} split's images do not fit the {size[0]}×{size[1]} px the "
            f"file's images would be resized to ({shown} px): {why}; resize {split}_images to "
            f"{size[0]}×{size[1]} (or take every split from one version of the data set: MedMNIST+ "
            "ships 28, 64, 128 and 224 px ones)"
            + (f", or give an --image-size that fits every split, such as {side}" if fits else "")
        )


def load_npz(
    path: Path,
    splits: list[str],
    image_size: tuple[int, int] | None,
    channels: int | None,
    class_names: list[str] | None,
    cache_dir: Path | None,
    min_size: int | None = None,
    max_size: int | None = None,
) -> Loaded:
    """Load the requested splits of a MedMNIST file (val only when the file has it); without
    ``image_size``, at the native size kept within ``min_size`` and ``max_size``
    (``imageset.native_fit``)."""
    arrays = _read(path, splits)
    first = next(iter(arrays.values()))[0]
    native_size, native_channels = (first.shape[1], first.shape[2]), first.shape[3]
    n_classes = max(int(labels.max(initial=-1)) for _, labels in arrays.values()) + 1
    if class_names is None:
        _check_labels_used(path, arrays, n_classes)
        class_names = [str(i) for i in range(n_classes)]
    elif len(class_names) < n_classes:
        raise DataError(
            f"{path} has labels 0..{n_classes - 1} but only {len(class_names)} class names were "
            f"given ({', '.join(class_names)}); pass one name per class"
        )
    size: tuple[int, int] = image_size or native_fit(native_size, min_size, max_size)
    natives = {split: (images.shape[1], images.shape[2]) for split, (images, _) in arrays.items()}
    _check_fit(path, natives, size)
    channels = channels or native_channels
    content_hash = file_digest(path)
    chosen = cache_dir is not None
    cache = ArrayCache(cache_dir or path.parent / ".cache", str(path.resolve()), chosen)
    sets, split_hashes = {}, {}
    for split, (images, labels) in arrays.items():
        split_hashes[split] = _arrays_digest(images, labels)
        if images.shape[1:] != (*size, channels):
            name, key = f"{path.stem}.{split}", make_key(content_hash, split, list(size), channels)
            hit = cache.load(name, key)
            if hit is None:
                converted = np.stack([conform(_2d(im), size, channels) for im in images])
                cache.save(name, key, converted, {})
                images = converted
            else:
                images = hit[0]
        sizes = np.tile(np.array(natives[split], dtype=np.int64), (len(labels), 1))
        depths = np.full(len(labels), 8, dtype=np.int64)  # uint8, checked
        sets[split] = ImageSet(
            images=images, labels=labels, original_sizes=sizes, bit_depths=depths
        )
    return Loaded(
        class_names, sets, tuple(size), channels, content_hash, [], "npz",
        split_hashes=split_hashes,
    )  # fmt: skip


def _arrays_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """BLAKE2b (128 bits) of one split's images and labels as stored (shapes, types, bytes): the
    split's own identity, whatever else of the file changed (``DatasetSplits.split_hashes``)."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (images, labels):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()
