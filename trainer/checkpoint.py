"""Checkpoints: everything needed to continue a run exactly, written atomically each epoch."""

import fcntl
import io
import json
import logging
import os
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import torch

from common import (
    DISK_FULL,
    InvalidInput,
    ServiceUnavailable,
    atomic_write_bytes,
    free_space,
    get_settings,
    remove_partial_writes,
)

CHECKPOINT_NAME = "last.pt"
# The checkpoints a trainer writes: last.pt, and the last-<run id>.pt --resume auto keeps aside.
_CHECKPOINT_NAMES = r"last(?:-[0-9a-f]+)?\.pt"
LOCK_NAME = "trainer.lock"

log = logging.getLogger(__name__)


def default_dir(experiment: str) -> Path:
    """``<CHECKPOINT_DIR>/<experiment>`` (``.state/checkpoints/<experiment>`` unless set) with the
    name made safe for a folder: other characters as ``_``, and a name of dots only (MLflow
    takes an experiment named ``..``) as underscores, so that it never names the folder above
    or the root itself. The images set ``CHECKPOINT_DIR``: their code folder is read-only."""
    root = get_settings().checkpoint_dir
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment)
    if set(safe) <= {"."}:  # "", "." or "..": the root itself or the folder above it
        safe = "_" * max(1, len(safe))
    return root / safe


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` so that a crash leaves the previous checkpoint intact.

    Raises:
        ServiceUnavailable: It cannot be written (a full disk, a file size limit); the previous
            checkpoint stays, and the message names the folder and its free space.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        do = (
            f"free space in {path.parent}" if exc.errno in DISK_FULL
            else f"make {path.parent} writable"
        )  # fmt: skip
        raise ServiceUnavailable(
            f"the checkpoint {path} could not be written ({exc.strerror or exc}; "
            f"{free_space(path.parent)}); the checkpoint written before it is kept: {do} (the "
            "CHECKPOINT_DIR folder, or --checkpoint-dir) and continue with --resume auto"
        ).needs_operator() from exc


@dataclass
class FolderLock:
    """One trainer's exclusive hold on its checkpoint folder. An ``flock`` on ``trainer.lock``:
    the kernel lets go when the process ends, however it ends (``kill -9``, out of memory), so a
    lock that can be taken proves the last holder gone. The file names that holder."""

    folder: Path
    file: IO[str]
    previous: dict[str, Any]  # what the last holder recorded ({} for a new folder)

    def record(self, run_id: str | None) -> None:
        """Name this process and its run in the file, for a trainer refused meanwhile and for
        the next one to hold the folder (see ``previous``)."""
        fields = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
        self.file.seek(0)
        self.file.truncate()
        self.file.write(json.dumps(fields))
        self.file.flush()

    def release(self) -> None:
        self.file.close()


def trainer_id(record: dict[str, Any] | None = None) -> str:
    """``host:pid`` of the trainer a lock ``record`` names, or of this process: the run's
    ``pipeline.trainer`` tag."""
    if record is not None:
        return f"{record.get('host')}:{record.get('pid')}"
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Held:
    """The checkpoint folders this trainer holds: its own and, for ``--resume PATH`` in another
    folder, that one too (else a second trainer could train the same run from it)."""

    locks: list[FolderLock]

    def record(self, run_id: str | None) -> None:
        for lock in self.locks:
            lock.record(run_id)

    def release(self) -> None:
        for lock in self.locks:
            lock.release()


def resume_path(resume: str | None) -> Path | None:
    """The checkpoint file a ``--resume`` value names: a folder means its ``last.pt``; None for
    no value and ``auto`` (the checkpoint folder's own)."""
    if not resume or resume == "auto":
        return None
    path = Path(resume)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def hold_all(checkpoint_dir: Path, resume: str | None) -> Held:
    """``hold`` the checkpoint folder, and the folder of a ``--resume`` path elsewhere when the
    path is that folder's ``last.pt`` (what a trainer there writes; a kept ``last-<run>.pt`` is
    no trainer's) and the folder can be written (a read-only copy: no trainer writes there)."""
    held = Held([hold(checkpoint_dir)])
    try:
        path = resume_path(resume)
        if path is not None and path.name == CHECKPOINT_NAME:
            other = path.parent
            if other.resolve() != checkpoint_dir.resolve() and other.is_dir():
                lock = hold(other, must_write=False)
                if lock is not None:
                    held.locks.append(lock)
    except BaseException:
        held.release()
        raise
    return held


def _holder(file: IO[str]) -> dict[str, Any]:
    file.seek(0)
    try:
        record = json.loads(file.read() or "{}")
    except ValueError:  # half written by a holder that died meanwhile: names no one
        return {}
    return record if isinstance(record, dict) else {}


def hold(folder: Path, must_write: bool = True) -> FolderLock | None:
    """Take ``folder`` for this trainer until ``release``; ``InvalidInput`` naming the other
    trainer when one holds it (two trainers would overwrite each other's ``last.pt``, and
    ``--resume auto`` would continue a run that another process is training). A folder that
    cannot be written is an error, or None without ``must_write``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        file = open(folder / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 (held open)
    except OSError as exc:
        if not must_write:
            return None
        raise InvalidInput(
            f"the checkpoint folder {folder} cannot be written ({exc}); give the trainer a "
            "writable folder with --checkpoint-dir or CHECKPOINT_DIR"
        ) from exc
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = _holder(file)
        file.close()
        who = ", ".join(f"{n} {other[k]}" for n, k in (("run", "run_id"), ("process", "pid"))
                        if other.get(k))  # fmt: skip
        who += "".join(f" {n} {other[k]}" for n, k in (("on", "host"), ("since", "since"))
                       if other.get(k))  # fmt: skip
        raise InvalidInput(
            f"another trainer is using the checkpoint folder {folder}{f' ({who})' if who else ''}"
            "; wait for it to end, or give this run its own folder with --checkpoint-dir"
        ) from None
    except OSError as exc:
        file.close()
        raise InvalidInput(
            f"the checkpoint folder {folder} cannot be locked ({exc}); use a folder on a file "
            "system with file locks (--checkpoint-dir or CHECKPOINT_DIR)"
        ) from exc
    # Held: no trainer writes a checkpoint here now, so a checkpoint's temporary file is one a
    # killed trainer left (only in its own folder: a --resume folder may hold others' files).
    if must_write:
        for left in remove_partial_writes(folder, _CHECKPOINT_NAMES):
            log.info("removed %s, left by a trainer killed while writing its checkpoint", left)
    return FolderLock(folder, file, _holder(file))


def kept_path(folder: Path, run_id: str) -> Path:
    """Where the unfinished checkpoint of ``run_id`` is kept once another run uses ``folder``."""
    return folder / f"last-{run_id}.pt"


def claim(folder: Path, run_id: str) -> None:
    """Make ``folder`` the checkpoint folder of ``run_id`` (new or resumed), losing nothing: an
    unfinished checkpoint of another run there is kept as ``last-<its run id>.pt``, and one of
    ``run_id`` kept that way earlier becomes ``last.pt`` again. So an unfinished ``last.pt`` is
    always the last run's to claim the folder, which is the one ``--resume auto`` continues
    (a run killed before its first checkpoint leaves none: auto starts anew)."""
    folder.mkdir(parents=True, exist_ok=True)
    current, state = folder / CHECKPOINT_NAME, None
    if current.is_file():
        try:
            state = load(current)
        except InvalidInput:  # damaged: overwritten by the next checkpoint, as before
            state = None
    if state and state["run_id"] != run_id and not state.get("finished", False):
        kept = kept_path(folder, state["run_id"])
        os.replace(current, kept)
        log.warning(
            "the checkpoint of the unfinished run %s (epoch %s) is kept as %s: --resume %s "
            "continues that run on the same data, with its settings",
            state["run_id"], state["epoch"], kept, kept,
        )  # fmt: skip
        state = None
    own = kept_path(folder, run_id)
    if own.is_file() and (state is None or state["run_id"] != run_id):
        os.replace(own, current)  # over a finished or damaged one: nothing of value is lost


def load(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save`; ``InvalidInput`` when missing or unreadable."""
    if not path.is_file():
        raise InvalidInput(
            f"checkpoint {path} does not exist; pass --resume auto to continue the last run of "
            "the experiment when there is one, or a path to a last.pt file."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise InvalidInput(
            f"checkpoint {path} cannot be read ({exc}); delete it or retrain."
        ) from exc
    if not isinstance(state, dict) or "run_id" not in state or "epoch" not in state:
        raise InvalidInput(f"{path} is not a checkpoint written by the trainer.")
    return state


def find(resume: str | None, checkpoint_dir: Path) -> dict[str, Any] | None:
    """The checkpoint to continue from, loaded; ``None`` to start a new run.

    Args:
        resume: ``None`` (new run), ``"auto"`` (the folder's ``last.pt`` when unfinished: the
            last run to claim the folder, see ``claim``; else a new run) or the path of a
            checkpoint file or its folder.
        checkpoint_dir: Where ``"auto"`` looks.
    """
    if not resume:
        return None
    if resume == "auto":
        path = checkpoint_dir / CHECKPOINT_NAME
        if not path.is_file():
            return None
        state = load(path)
        return None if state.get("finished", False) else state
    path = resume_path(resume)
    state = load(path)
    if state.get("finished", False):
        raise InvalidInput(
            f"checkpoint {path} belongs to run {state['run_id']}, which already finished "
            f"{state['epoch']} epochs; nothing to resume (start a new run without --resume)."
        )
    return state


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The random states a resumed run needs to draw the same numbers."""
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
