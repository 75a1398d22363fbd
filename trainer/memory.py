"""Will a training batch fit the model and the memory? Checked before the first epoch, so that
images too small for the model's pooling, or a size or batch too large for the machine, are a
clear error instead of a RuntimeError or the kernel's out-of-memory kill mid-epoch.

The estimate is the sum of the outputs of the model's leaf modules for one image (what autograd
keeps for the backward pass, and about what the gradients of those outputs take), times the
batch. Measured peaks against it on a 2-core CPU, batch 64 (`python -m trainer`): SmallCNN at
179×224 px 2.5 GiB (estimate 1.8), at 512² 11.2 GiB (11.8); ResNet-18 at 224² 14.9 GiB (20.9,
its in-place ReLUs overcount). So the check warns above ``WARN_SHARE`` of the available memory and
refuses only above ``REFUSE_RATIO`` times it, where no run of these models fits.
"""

import logging
import sys
from pathlib import Path

import torch
from torch import nn

from common import InvalidInput
from runs import Preprocessing

log = logging.getLogger(__name__)

WARN_SHARE = 0.7
REFUSE_RATIO = 1.5
PROBE_SIDE = 128  # conv activations grow with the pixels; probe small and scale up
GIB = 2**30


def activation_bytes(model: nn.Module, channels: int, size: tuple[int, int]) -> int:
    """Estimated bytes of the leaf modules' outputs for one image of ``size`` (height, width),
    from one forward pass at ``PROBE_SIDE`` px scaled by the pixel count."""
    height, width = size
    scale = min(1.0, PROBE_SIDE / max(height, width))
    probe = (max(8, round(height * scale)), max(8, round(width * scale)))
    total = 0

    def add(_module, _inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(add) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, *probe))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return round(total * height * width / (probe[0] * probe[1]))


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None


def cgroup_free_bytes(
    root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")
) -> int | None:
    """What this process's memory cgroup and every cgroup above it have left (limit − usage, the
    smallest); None without a limit. The process's own cgroup comes from ``membership``
    (``/proc/self/cgroup``): in a container with its own cgroup namespace that is the mount's root,
    but a process placed in a nested cgroup without one (a batch system's job, a systemd slice)
    sits below it, and only its own folder holds its limit. Folders that are not mounted here
    (a container without a cgroup namespace sees its host path) are skipped, so the mount's root
    still counts."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    # cgroup v2: "0::/path", limit in memory.max; v1: "N:...,memory,...:/path" under memory/.
    v2_path = v1_path = ""
    for line in lines:
        number, controllers, path = [*line.split(":", 2), "", ""][:3]
        if number == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    layouts = [
        (root, v2_path, "memory.max", "memory.current"),
        (root / "memory", v1_path, "memory.limit_in_bytes", "memory.usage_in_bytes"),
    ]
    for base, path, limit_name, usage_name in layouts:
        if not (base / "cgroup.procs").exists():
            continue  # not mounted here (v1 and v2 mounts differ; a hybrid host mounts both)
        parts = [part for part in path.split("/") if part]
        left = []
        for depth in range(len(parts), -1, -1):  # the process's own cgroup, then each parent
            folder = base.joinpath(*parts[:depth])
            limit, usage = _read_int(folder / limit_name), _read_int(folder / usage_name)
            if limit is not None and usage is not None and limit < 2**60:
                left.append(limit - usage)
        return max(0, min(left)) if left else None
    return None


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device``: the GPU's free memory, or on Linux the smaller of the kernel's
    MemAvailable and what this process's cgroups (a container's or pod's limit, a job's slice)
    have left; None where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    found = [line.split()[1] for line in meminfo if line.startswith("MemAvailable:")]
    if not found:
        return None
    free = int(found[0]) * 1024
    cgroup = cgroup_free_bytes()
    return free if cgroup is None else min(free, cgroup)


def check_batch_fits(
    per_image: int, batch: int, available: int | None, size: tuple[int, int], model: str
) -> str | None:
    """Raise when ``batch`` images of ``per_image`` bytes clearly exceed ``available``; return
    (and print) a warning when they come close; None when they fit or nothing is known.

    Raises:
        InvalidInput: Above ``REFUSE_RATIO`` times the available memory.
    """
    if available is None or available <= 0 or per_image <= 0:
        return None
    need = per_image * batch
    fits = max(1, int(WARN_SHARE * available // per_image))
    height, width = size
    what = (
        f"a training batch of {batch} images of {height}×{width} px needs about "
        f"{need / GIB:.1f} GiB for {model}'s activations and {available / GIB:.1f} GiB is free"
    )
    fixes = (
        f"use --batch-size {fits} or less, or smaller images (--max-image-size, --image-size)"
        if fits < batch
        else "use smaller images (--max-image-size, --image-size)"
    )
    if need > REFUSE_RATIO * available:
        raise InvalidInput(f"{what}, so training would be killed for lack of memory; {fixes}")
    if need > WARN_SHARE * available:
        message = f"{what}; training may run out of memory: if it is killed, {fixes}"
        log.warning(message)
        print(f"warning: {message}", file=sys.stderr, flush=True)
        return message
    return None


def _forward_works(model: nn.Module, channels: int, size: tuple[int, int]) -> bool:
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, *size))
        return True
    except RuntimeError:  # a pooling layer's output would be empty
        return False
    finally:
        model.train(was_training)


def check_input_size(model: nn.Module, name: str, channels: int, size: tuple[int, int]) -> None:
    """Raise when images of ``size`` are too small for ``model`` (the SmallCNN's pooling needs
    8 px a side), instead of a RuntimeError from deep inside the first epoch. Only the short side
    matters, so the check runs at ``size`` capped to 64 px a side.

    Raises:
        InvalidInput: The model cannot take images of ``size``; names the smallest side it can.
    """
    height, width = size
    if _forward_works(model, channels, (min(height, 64), min(width, 64))):
        return
    side = next((s for s in range(2, 65) if _forward_works(model, channels, (s, s))), 64)
    raise InvalidInput(
        f"images of {height}×{width} px are too small for {name}, which needs at least {side} px "
        f"a side; pass --image-size {side} or more, or --min-image-size {side} to enlarge only "
        "small images"
    )


def check_training(
    model: nn.Module,
    name: str,
    preprocessing: Preprocessing,
    batch: int,
    device: torch.device,
    processes: int,
) -> str | None:
    """:func:`check_input_size`, then :func:`check_batch_fits` for a training batch of
    ``model`` on ``device``, where ``processes`` local training processes share the host's memory
    (torchrun on CPU)."""
    check_input_size(model, name, preprocessing.channels, preprocessing.image_size)
    available = available_bytes(device)
    if available is not None and device.type == "cpu":
        available //= max(1, processes)
    per_image = activation_bytes(model, preprocessing.channels, preprocessing.image_size)
    return check_batch_fits(per_image, batch, available, preprocessing.image_size, name)
