"""Leakage check: images that appear in more than one split, exactly or nearly.

* **Exact duplicates**: the BLAKE2b hash of an image's decoded pixels at the loaded size and
  channel count: the same picture under two names, or the same array twice in an ``.npz``.
* **Near duplicates**: two checks, both needed. A 64-bit DCT perceptual hash (pHash, as in the
  ``imagehash`` package: greyscale, resized to 32×32, 2-D DCT, the 8×8 lowest frequencies
  compared with their median) within ``NEAR_THRESHOLD`` = 8 of 64 bits finds the candidates; the
  Pearson correlation of the two 32×32 greyscale thumbnails must then be at least
  ``NEAR_CORRELATION`` = 0.95. Pairs that are already exact duplicates are not counted again.
* **Label conflicts**: exact duplicates (by the same hash) that carry different labels, within a
  split or across splits: the same picture filed under two classes. **Near label conflicts**:
  groups of near duplicates (joined transitively, as ``duplicate_clusters``) that carry different
  labels and are not all one picture: on BreastMNIST, 5 groups (13 images, mean difference 1-12
  grey levels), 4 of them with a test image labelled against its training copies.

Why both: on BreastMNIST (28 px ultrasound) the train/test pairs within 8 bits have correlation
0.94-1.00 (the same frame re-exported; random pairs differ by about 45 grey levels), with a gap
to the next pairs at 12 bits. On the synthetic demo set (smooth lesions on skin) the hash alone
is too coarse: distinct images lie 4-8 bits apart, but their correlation is at most 0.89. A copy
with brightness +8 and noise of σ 2 is found (tests/dataloader/test_leakage.py); a shift by one
pixel of a 28 px image moves the hash by 4-16 bits and is only sometimes found.
"""

import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:
    from dataloader.imageset import ImageSet

NEAR_THRESHOLD = 8
NEAR_CORRELATION = 0.95
HASH_SIZE = 8
THUMB = 32  # side of the grey thumbnails whose correlation confirms a near duplicate
CACHE_IMAGES = 100_000  # images whose hash and thumbnail are kept: about 1.6 KB each
_LOOKS: OrderedDict[tuple[str, tuple[int, ...]], tuple[np.uint64, np.ndarray]] = OrderedDict()
_LOOKS_LOCK = threading.Lock()
_BIT_WEIGHTS = np.uint64(1) << np.arange(HASH_SIZE * HASH_SIZE, dtype=np.uint64)
BLOCK = 1 << 23  # hash pairs compared at once: 64 MB of uint64, whatever the split sizes
MAX_EXAMPLES = 5
MAX_NEAR_CONFLICT_IMAGES = 30_000  # near_label_conflicts compares all pairs: about 4 s here
PAIRS = (("train", "val"), ("train", "test"), ("val", "test"))
METHOD = (
    "exact: BLAKE2b of the decoded pixels at the loaded size; near: 64-bit DCT perceptual hash "
    f"(pHash) within {NEAR_THRESHOLD} bits and correlation of {THUMB}x{THUMB} grey thumbnails >= "
    f"{NEAR_CORRELATION}, exact duplicates not counted again"
)


def pixel_hashes(images: np.ndarray) -> list[str]:
    """A hex digest of each uint8 ``N×H×W×C`` image's pixels."""
    return [
        hashlib.blake2b(np.ascontiguousarray(im).tobytes(), digest_size=16).hexdigest()
        for im in images
    ]


def _grey(image: np.ndarray) -> np.ndarray:
    if image.shape[-1] == 1:
        return image[..., 0]
    return np.asarray(Image.fromarray(image).convert("L"))


def fingerprints(images: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """What the checks compare, of each uint8 ``N×H×W×C`` image, in one pass: its pixel digest
    (``pixel_hashes``), its 64-bit DCT perceptual hash (uint64 ``N``) and its greyscale
    ``THUMB×THUMB`` thumbnail, zero mean and unit norm, as float ``N×THUMB²`` (the dot product of
    two rows is their Pearson correlation)."""
    digests = pixel_hashes(images)
    phash, small = _looks_of(images, digests)
    thumbs = np.empty((len(images), THUMB * THUMB))
    for i, pixels in enumerate(small):
        t = pixels.astype(np.float64).ravel()
        t -= t.mean()
        norm = np.linalg.norm(t)
        thumbs[i] = t / norm if norm > 0 else t
    return digests, phash, thumbs


def _look(image: np.ndarray) -> tuple[np.uint64, np.ndarray]:
    """One image's perceptual hash, and its grey ``THUMB×THUMB`` thumbnail (uint8)."""
    grey = Image.fromarray(_grey(image))
    size = HASH_SIZE * 4
    small = grey.resize((size, size), Image.Resampling.LANCZOS)
    low = dctn(np.asarray(small, dtype=np.float64), norm="ortho")[:HASH_SIZE, :HASH_SIZE]
    bits = (low > np.median(low)).ravel()
    phash = np.bitwise_or.reduce(_BIT_WEIGHTS[bits], initial=np.uint64(0))
    return phash, np.asarray(grey.resize((THUMB, THUMB), Image.Resampling.BILINEAR))


def _looks_of(images: np.ndarray, digests: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``_look`` of each image (uint64 ``N``, uint8 ``N×THUMB×THUMB``), through a cache of the
    last ``CACHE_IMAGES`` images looked at, by their pixels (``digests``, ``pixel_hashes``) and
    shape: a trainer's start looks
    at its images up to five times (two carvings of the validation split, the audit's
    statistics), and those passes took most of the start on tens of thousands of images."""
    phash = np.empty(len(images), dtype=np.uint64)
    small = np.empty((len(images), THUMB, THUMB), dtype=np.uint8)
    for i, (image, digest) in enumerate(zip(images, digests, strict=True)):
        key = (digest, image.shape)
        with _LOOKS_LOCK:
            found = _LOOKS.get(key)
            if found is not None:
                _LOOKS.move_to_end(key)
        if found is None:
            found = _look(image)
            with _LOOKS_LOCK:
                _LOOKS[key] = found
                while len(_LOOKS) > CACHE_IMAGES:
                    _LOOKS.popitem(last=False)
        phash[i], small[i] = found
    return phash, small


def near_matches(
    hashes_a: np.ndarray,
    hashes_b: np.ndarray,
    thumbs_a: np.ndarray,
    thumbs_b: np.ndarray,
    threshold: int = NEAR_THRESHOLD,
    min_correlation: float = NEAR_CORRELATION,
) -> list[tuple[int, int, int, float]]:
    """``(j, i, distance, correlation)`` for each image ``j`` of b with a near duplicate ``i``
    in a: among the images of a within ``threshold`` bits, the best-correlated one, kept when
    its correlation reaches ``min_correlation``."""
    found = []
    chunk = max(1, BLOCK // max(len(hashes_a), 1))  # images of b compared at once
    for start in range(0, len(hashes_b), chunk):
        block = hashes_b[start : start + chunk]
        dist = np.bitwise_count(block[:, None] ^ hashes_a[None, :])
        for row in np.flatnonzero((dist <= threshold).any(axis=1)):
            j = start + int(row)
            candidates = np.flatnonzero(dist[row] <= threshold)
            corr = thumbs_a[candidates] @ thumbs_b[j]
            best = int(np.argmax(corr))
            if corr[best] >= min_correlation:
                i = int(candidates[best])
                found.append((j, i, int(dist[row, i]), float(corr[best])))
    return found


def duplicate_clusters(images: np.ndarray) -> np.ndarray:
    """A cluster number per uint8 ``N×H×W×C`` image: images that are exact or near duplicates of
    each other (by the tests of this module, followed transitively) share one, every other image
    has its own. Clusters are numbered in order of their first image.

    The validation split carved from train keeps each cluster on one side, so that a frame
    exported twice cannot be trained on and validated on at once.
    """
    return _clusters(*fingerprints(images))


def _clusters(exact: list[str], phash: np.ndarray, thumbs: np.ndarray) -> np.ndarray:
    """``duplicate_clusters`` of images with these pixel hashes, perceptual hashes and
    thumbnails (computed once by the caller)."""
    n = len(exact)
    rows: list[int] = []
    cols: list[int] = []
    first: dict[str, int] = {}
    for i, h in enumerate(exact):
        if first.setdefault(h, i) != i:
            rows.append(first[h])
            cols.append(i)
    chunk = max(1, BLOCK // max(n, 1))
    for start in range(0, n, chunk):
        close = np.bitwise_count(phash[start : start + chunk, None] ^ phash[None, :])
        a, b = np.nonzero(close <= NEAR_THRESHOLD)
        a += start
        a, b = a[b > a], b[b > a]  # each pair once, not the image itself
        for at in range(0, len(a), 4096):  # thumbnails of 4096 pairs (2×32 MB) at a time
            pair_a, pair_b = a[at : at + 4096], b[at : at + 4096]
            similar = np.einsum("ij,ij->i", thumbs[pair_a], thumbs[pair_b]) >= NEAR_CORRELATION
            rows += pair_a[similar].tolist()
            cols += pair_b[similar].tolist()
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # connected_components numbers components by their lowest node already; make it explicit.
    _, order = np.unique(labels, return_index=True)
    renumber = np.empty(len(order), dtype=np.int64)
    renumber[labels[np.sort(order)]] = np.arange(len(order))
    return renumber[labels]


def _class_name(label: int, class_names: list[str] | None) -> str:
    return class_names[label] if class_names and label < len(class_names) else str(label)


def _names(split: str, images: "ImageSet") -> list[str]:
    if images.files is not None:
        return list(images.files)
    return [f"{split}[{i}]" for i in range(len(images))]


def label_conflicts(
    sets: "dict[str, ImageSet]",
    hashes: dict[str, list[str]],
    names: dict[str, list[str]],
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Exact duplicates (same ``hashes``) that carry different labels, within a split or across
    splits: ``{"count", "examples"}``, ``count`` the number of such pictures, ``examples`` up to
    five ``{"files", "classes"}`` (the first five copies and the class of each)."""
    copies: dict[str, list[tuple[str, int]]] = {}
    for split, images in sets.items():
        for i, h in enumerate(hashes[split]):
            copies.setdefault(h, []).append((names[split][i], int(images.labels[i])))
    conflicts = [c for c in copies.values() if len({label for _, label in c}) > 1]

    examples = [
        {
            "files": [f for f, _ in c[:MAX_EXAMPLES]],
            "classes": [_class_name(lb, class_names) for _, lb in c[:MAX_EXAMPLES]],
        }
        for c in conflicts[:MAX_EXAMPLES]
    ]
    return {"count": len(conflicts), "examples": examples}


def near_label_conflicts(
    sets: "dict[str, ImageSet]",
    hashes: dict[str, list[str]],
    phash: dict[str, np.ndarray],
    thumbs: dict[str, np.ndarray],
    names: dict[str, list[str]],
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Groups of near duplicates across all ``sets`` (``duplicate_clusters``) that carry
    different labels and are not all one picture (those are ``label_conflicts``): ``{"count",
    "examples"}`` as ``label_conflicts``, ``count`` the number of such groups."""
    order = list(sets)
    total = sum(len(sets[s]) for s in order)
    if not total:
        return {"count": 0, "examples": []}
    if total > MAX_NEAR_CONFLICT_IMAGES:  # one more all-pairs pass: seconds per 10^4 images
        return {"count": None, "examples": [], "skipped": (
            f"not looked for: {total} images, more than {MAX_NEAR_CONFLICT_IMAGES} (the pairs "
            "of all of them are compared)")}  # fmt: skip
    labels = np.concatenate([np.asarray(sets[s].labels, dtype=np.int64) for s in order])
    files = [f for s in order for f in names[s]]
    exact = [h for s in order for h in hashes[s]]
    clusters = _clusters(exact, np.concatenate([phash[s] for s in order]),
                         np.concatenate([thumbs[s] for s in order]))  # fmt: skip
    found = []
    for members in np.split(np.argsort(clusters, kind="stable"),
                            np.flatnonzero(np.diff(np.sort(clusters))) + 1):  # fmt: skip
        if len(set(labels[members])) > 1 and len({exact[i] for i in members}) > 1:
            found.append(members)

    def shown(members: np.ndarray) -> list[int]:
        # one image of each class first, so that a large group still shows its conflict
        firsts = list(dict.fromkeys(int(labels[i]) for i in members))
        lead = [int(next(i for i in members if labels[i] == lb)) for lb in firsts]
        return (lead + [int(i) for i in members if int(i) not in lead])[:MAX_EXAMPLES]

    examples = []
    for members in found[:MAX_EXAMPLES]:
        picked = shown(members)
        examples.append({
            "files": [files[i] for i in picked],
            "classes": [_class_name(int(labels[i]), class_names) for i in picked],
        })  # fmt: skip
    return {"count": len(found), "examples": examples}


def leakage_report(
    sets: "dict[str, ImageSet]", class_names: list[str] | None = None
) -> dict[str, Any]:
    """Exact and near duplicates between every pair of the loaded splits, and exact and near
    duplicates with different labels anywhere (``label_conflicts``, ``near_label_conflicts``).

    Returns:
        ``{"method", "near_threshold", "exact": {"train/test": {"count", "examples"}}, "near":
        {...}, "exact_total", "near_total", "label_conflicts", "near_label_conflicts"}``;
        ``count`` is the number of images of the second split of the pair with a duplicate in
        the first, ``examples`` up to five ``{"a", "b"[, "distance", "correlation"]}`` with file
        names (``split[index]`` for ``.npz``).
    """
    present = {name: s for name, s in sets.items() if s is not None and len(s)}
    prints = {name: fingerprints(s.images) for name, s in present.items()}
    exact_h = {name: found[0] for name, found in prints.items()}
    phash = {name: found[1] for name, found in prints.items()}
    thumbs = {name: found[2] for name, found in prints.items()}
    names = {name: _names(name, s) for name, s in present.items()}
    exact: dict[str, Any] = {}
    near: dict[str, Any] = {}
    for first, second in PAIRS:
        if first not in present or second not in present:
            continue
        key = f"{first}/{second}"
        index = {}
        for i, h in enumerate(exact_h[first]):
            index.setdefault(h, i)
        exact_pairs = [(index[h], j) for j, h in enumerate(exact_h[second]) if h in index]
        exact[key] = {
            "count": len(exact_pairs),
            "examples": [{"a": names[first][i], "b": names[second][j]}
                         for i, j in exact_pairs[:MAX_EXAMPLES]],
        }  # fmt: skip
        exact_b = {j for _, j in exact_pairs}
        matches = near_matches(phash[first], phash[second], thumbs[first], thumbs[second])
        matches = [m for m in matches if m[0] not in exact_b]
        near[key] = {
            "count": len(matches),
            "examples": [
                {"a": names[first][i], "b": names[second][j], "distance": d,
                 "correlation": round(c, 4)}
                for j, i, d, c in matches[:MAX_EXAMPLES]
            ],
        }  # fmt: skip
    return {
        "method": METHOD,
        "near_threshold": NEAR_THRESHOLD,
        "near_correlation": NEAR_CORRELATION,
        "exact": exact,
        "near": near,
        "exact_total": sum(v["count"] for v in exact.values()),
        "near_total": sum(v["count"] for v in near.values()),
        "label_conflicts": label_conflicts(present, exact_h, names, class_names),
        "near_label_conflicts": near_label_conflicts(
            present, exact_h, phash, thumbs, names, class_names
        ),
    }


def _copies(conflicts: dict[str, Any], sign: str) -> str:
    first = conflicts["examples"][0]
    return f" {sign} ".join(
        f"{file} ({cls})" for file, cls in zip(first["files"], first["classes"], strict=True)
    )


def label_conflict_note(leakage: dict[str, Any] | None, listed_in: str) -> str | None:
    """One sentence on the ``label_conflicts`` and ``near_label_conflicts`` of a
    ``dataset_stats.json`` ``leakage`` section (identical or near-identical images under two or
    more classes); None when there are none. ``listed_in``: the file of the statistics, named
    in the sentence."""
    exact = (leakage or {}).get("label_conflicts") or {}
    near = (leakage or {}).get("near_label_conflicts") or {}  # absent in statistics before it
    parts = []
    if exact.get("count"):
        parts.append(
            f"{exact['count']} image(s) appear under two or more classes (identical pixels, "
            f"e.g. {_copies(exact, '=')}); keep each image only in the folder of its true class "
            "(a class folder linked to its own split, such as train/all -> train/, repeats "
            "every image)"
        )
    if near.get("count"):
        parts.append(
            f"{near['count']} group(s) of near-identical images (the same frame exported "
            f"twice, by the near-duplicate test) carry different classes, e.g. "
            f"{_copies(near, '≈')}: check their labels; a test image labelled against its "
            "training copies is scored against what the model learnt from them"
        )
    if near.get("skipped"):  # too many images for the all-pairs look: say it was not made
        parts.append(f"near-identical images under two classes were {near['skipped']}")
    if not parts:
        return None
    return (
        "; and ".join(parts) + f"; {listed_in} lists examples under leakage.label_conflicts and "
        "leakage.near_label_conflicts"
    )
