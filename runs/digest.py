"""The digest of a model's weights: what ties the weights deployed to the run that trained them.

``log_classifier`` records the digest of the model it logs as the run's param ``weights_digest``
(write-once: MLflow refuses to change a param, so a model logged later into the same run cannot
rewrite it) and in the model's MLmodel metadata; ``dashboard.choose`` copies it onto the
registered version as the tag ``weights_digest``. Whoever loads a model compares the weights it
got with that record: the choice, the evaluator and explainer (``runs.load_model``) and the
predictor. Models logged before the digest have none and load as before.

The weights can only be digested once loaded, which unpickles the model's files (code runs).
``files_digest`` covers the files themselves: the choice records it on the version it registers
(the tag ``files_digest``, signed with the choice) and the predictor checks the files it
downloads against it before it loads them.
"""

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from common import Conflict, InvalidInput

DIGEST_KEY = "weights_digest"
"""The run param, the version tag and the MLmodel metadata entry that hold the digest."""
MEANING_KEY = "outputs_digest"
"""The run param (write-once, as ``weights_digest``) holding the sha256 of the preprocessing and
operating point the model was logged with: what its outputs mean (``log_classifier``)."""
FILES_KEY = "files_digest"
"""The version tag (signed with the choice, ``runs.choice``) holding ``files_digest`` of the
files registered: the predictor checks it before it unpickles anything of them."""
_HEADER = b"mlpipeline weights sha256 v1\0"
_FILES_HEADER = b"mlpipeline model files sha256 v1\0"
# Written by MLflow's models:/ download itself (the registered name and version), not stored
_DOWNLOAD_NOTE = "registered_model_meta"


def weights_digest(model) -> str:
    """sha256 (64 hex digits) over the state dict of ``model``: each entry's name, dtype, shape
    and bytes, entries in the order of their names, so it does not depend on the device, on how
    the module was built or on its pickling. ``model`` is a module (an ``ImageClassifier``, an
    ``Ensemble``, as ``runs.load_model`` returns them) or a served classifier (its ``model``)."""
    module = model if isinstance(model, torch.nn.Module) else model.model
    digest = hashlib.sha256(_HEADER)
    for name, value in sorted(module.state_dict().items()):
        if not isinstance(value, torch.Tensor):  # extra state: its repr is all there is
            digest.update(f"{name}\0extra\0{value!r}\0".encode())
            continue
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        raw = tensor.reshape(-1).view(torch.uint8).numpy()
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)  # the buffer itself: no copy
    return digest.hexdigest()


class FilesRefused(InvalidInput):
    """A model's files are not those recorded when it was chosen (``files_digest``)."""


def files_digest(folder: str | os.PathLike) -> str:
    """sha256 (64 hex digits) over the files of a downloaded model ``folder``: each file's path
    under it, size and bytes, in the order of the paths, but the note MLflow's ``models:/``
    download writes there itself (so a version and the logged model it was registered from
    digest alike). Unlike ``weights_digest`` it needs nothing unpickled: it tells whether
    files are the ones chosen before any of their code runs."""
    root = Path(folder)
    digest = hashlib.sha256(_FILES_HEADER)
    files = sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    for path in files:
        name = path.relative_to(root).as_posix()
        if name == _DOWNLOAD_NOTE:
            continue
        if path.is_symlink():  # a download holds none; a link could point anywhere
            raise ValueError(f"the model's file {name} is a symbolic link")
        digest.update(f"{name}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def recorded_digest(record: Mapping[str, str] | None) -> str | None:
    """The ``weights_digest`` of ``record`` (a version's tags, a run's params), or None: logged
    before the digest was recorded."""
    return (record or {}).get(DIGEST_KEY) or None


def differs(actual: str, recorded: str | None) -> str | None:
    """Words for weights whose digest ``actual`` is not the ``recorded`` one; None when they are
    the same or nothing was recorded."""
    if not recorded or recorded == actual:
        return None
    return f"its weights' digest is {actual[:12]}…, not the recorded {recorded[:12]}…"


def check_run_model(model, run_id: str, params: Mapping[str, str] | None) -> str:
    """The digest of ``model``, loaded from run ``run_id``, after checking it against the run's
    param ``weights_digest`` (runs trained before it record none: nothing to check).

    Raises:
        Conflict: The run's model is not the one trained in it (another was logged into the run
            since): its figures describe other weights.
    """
    actual = weights_digest(model)
    if problem := differs(actual, recorded_digest(params)):
        raise Conflict(
            f"the run's model is not the one trained in it: {problem} (param {DIGEST_KEY}); "
            f"another model was logged into run {run_id} after its training, so its figures do "
            "not describe it: log that model in a new run (or train again) and use that run"
        )
    return actual


def checked_files(local: str, model_uri: str, files: str | None, done: str = "loaded") -> str:
    """``files_digest`` of the model downloaded to ``local`` (from ``model_uri``), taken before
    anything of it is read (``runs.packaging``'s loaders; ``done``: what the refusal says was
    not done with it, "downloaded" for the dashboard's Download).

    Raises:
        FilesRefused: Not ``files`` (when given), or a symbolic link among them.
    """
    try:
        actual = files_digest(local)
    except ValueError as exc:
        raise FilesRefused(f"{model_uri} was not {done}: {exc}") from exc
    if files and actual != files:
        raise FilesRefused(
            f"{model_uri} was not {done}: its files' digest is {actual[:12]}…, not the "
            f"{files[:12]}… recorded for it ({FILES_KEY}: the run's param when it was trained, "
            "a version's tag when it was chosen); its files were changed in the artifact store "
            "since, or other files were logged or registered in their place: restore them, or "
            "train (or choose) again"
        )
    return actual
