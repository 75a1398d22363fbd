"""Artifact viewers: images, text, CSV, JSON, NPZ and DICOM, each from the artifact's bytes."""

import html
import io
import json
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import alt_text, data
from dashboard.markup import plain
from dashboard.reads import PREVIEW_BYTES
from runs import ImageDecodeError, decode_image

IMAGE = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}
TEXT = {".txt", ".log", ".md", ".py", ".yaml", ".yml", ".cfg", ".ini", ".toml", ".sh"}
HTML = {".html", ".htm"}
# An HTML artifact is drawn in an iframe with an empty sandbox (no scripts, no forms, its own
# origin) and a policy that loads nothing from any network: only inline styles and data: images.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
TEXT_NAMES = {"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml"}
TABLE = {".csv": ",", ".tsv": "\t"}
# Viewers that need the whole file refuse files larger than this.
MAX_WHOLE = 50 * 1024 * 1024


def kind(path: str) -> str:
    """The viewer for ``path``: image, text, html, table, json, npz, dicom or binary."""
    p = PurePosixPath(path)
    suffix = p.suffix.lower()
    if suffix in IMAGE:
        return "image"
    if suffix in TEXT or p.name in TEXT_NAMES:
        return "text"
    if suffix in HTML:
        return "html"
    if suffix in TABLE:
        return "table"
    if suffix == ".json":
        return "json"
    if suffix == ".npz" or suffix == ".npy":
        return "npz"
    if suffix in (".dcm", ".dicom"):
        return "dicom"
    return "binary"


def human_size(size: int | None) -> str:
    if size is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def array_summary(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per array: name, shape, dtype and min/mean/max for numeric arrays."""
    rows = []
    for name, arr in arrays.items():
        row = {
            "array": name,
            "shape": "×".join(map(str, arr.shape)) or "scalar",
            "dtype": str(arr.dtype),
        }
        if arr.size and np.issubdtype(arr.dtype, np.number):
            row |= {"min": float(arr.min()), "mean": float(arr.mean()), "max": float(arr.max())}
        rows.append(row)
    return pd.DataFrame(rows)


def image_size(raw: bytes) -> tuple[int, int] | None:
    """Width and height from an image file's header; None where PIL cannot read it."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError):  # UnidentifiedImageError: OSError
        return None


def dicom_image(raw: bytes) -> tuple[np.ndarray, dict]:
    """The first frame of a DICOM file as the models see it (``runs.decode_image``: modality
    rescale, VOI window or stretch, MONOCHROME1 inverted; deflated files and too many pixels
    refused) and a few header fields: none that identifies the patient or the study (every
    dashboard user sees them), only what the image is.

    Raises:
        ImageDecodeError: The file is not a DICOM image the models can read; says why.
    """
    import pydicom
    import pydicom.errors

    image = decode_image(raw)  # first: it refuses a deflated file before anything inflates it
    try:
        ds = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError):  # a PNG named .dcm, say
        raise ImageDecodeError("not a DICOM file (an image under a DICOM name)") from None
    fields = {
        k: str(ds.get(k, ""))
        for k in ("Modality", "Rows", "Columns", "PhotometricInterpretation", "BitsStored")
    }
    return image, fields


def show(uri: str, run_id: str, path: str, size: int | None) -> None:
    """Render one artifact file with the viewer that fits its type."""
    what = kind(path)
    large = size is not None and size > PREVIEW_BYTES
    if what == "html":
        show_html(data.artifact_bytes(uri, run_id, path, PREVIEW_BYTES), path, size)
        return
    if what in ("text", "table", "json") and large:
        raw = data.artifact_bytes(uri, run_id, path, PREVIEW_BYTES)
        st.caption(f"Large file ({human_size(size)}): showing the first {human_size(len(raw))}.")
        if what == "table":
            frame = data.artifact_csv(uri, run_id, path, PREVIEW_BYTES)
            st.dataframe(frame, width="stretch")
        else:
            st.code(raw.decode("utf-8", errors="replace"), language=None)
        return
    if what != "binary" and size is not None and size > MAX_WHOLE:
        st.info(f"{plain(path)} is {human_size(size)}: too large to view here; download it.")
        return
    if what == "binary":
        st.info(f"No viewer for {PurePosixPath(path).suffix or 'this file'}; download it below.")
        return
    raw = data.artifact_bytes(uri, run_id, path)
    if what == "image":
        pixels = image_size(raw)
        if pixels is None:
            st.warning(
                f"{plain(path)} cannot be read as an image here (damaged, over the pixel limit, "
                "or not what its name says); download it below."
            )
        else:
            st.image(raw, caption=plain(path), alt=alt_text.artifact_image(path, pixels))
    elif what == "text":
        language = {".py": "python", ".yaml": "yaml", ".yml": "yaml"}.get(
            PurePosixPath(path).suffix
        )
        st.code(raw.decode("utf-8", errors="replace"), language=language)
    elif what == "table":
        sep = TABLE[PurePosixPath(path).suffix.lower()]
        st.dataframe(pd.read_csv(io.BytesIO(raw), sep=sep), width="stretch")
    elif what == "json":
        try:
            st.json(json.loads(raw.decode("utf-8")), expanded=2)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            st.warning(f"{plain(path)} is not valid JSON ({plain(exc)}); showing it as text.")
            st.code(raw.decode("utf-8", errors="replace"), language=None)
    elif what == "npz":
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays = {PurePosixPath(path).stem: loaded}
        else:
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
        st.dataframe(array_summary(arrays), hide_index=True, width="stretch")
    elif what == "dicom":
        try:
            image, fields = dicom_image(raw)
        except ImageDecodeError as exc:
            st.warning(f"{plain(path)} cannot be shown: {plain(exc)}.")
            return
        modality = f"{fields['Modality']} " if fields["Modality"] else ""
        st.image(
            image,
            caption=plain(path),
            clamp=True,
            alt=f"{modality}DICOM image {path}, {image.shape[1]}×{image.shape[0]} pixels (its "
            "first frame), as the models see it.",
        )
        st.json(fields)


def sandboxed(raw: bytes) -> str:
    """An ``<iframe>`` that shows the HTML document ``raw`` with no scripts and no network."""
    text = raw.decode("utf-8", errors="replace")
    policy = f'<meta http-equiv="Content-Security-Policy" content="{HTML_POLICY}">'
    return (
        '<iframe sandbox="" referrerpolicy="no-referrer" style="width:100%;height:560px;'
        f'border:1px solid #ddd;background:#fff" srcdoc="{html.escape(policy + text)}"></iframe>'
    )


def show_html(raw: bytes, path: str, size: int | None) -> None:
    """Render an HTML artifact in a sandbox (never as raw markup)."""
    import streamlit.components.v1 as components

    if size is not None and size > len(raw):
        st.caption(f"Large report ({human_size(size)}): showing its first {human_size(len(raw))}.")
    st.caption(f"{plain(path)}, rendered in a sandbox: scripts and network access are off.")
    components.html(sandboxed(raw), height=580, scrolling=False)


def download(uri: str, run_id: str, path: str, size: int | None) -> None:
    if size is not None and size > MAX_WHOLE:
        st.caption("Too large for a browser download: use `mlflow artifacts download`.")
        return
    st.download_button(
        f"Download {plain(PurePosixPath(path).name)}",
        data=lambda: data.artifact_bytes(uri, run_id, path),
        file_name=PurePosixPath(path).name,
        key=f"dl_{path}",
    )
