"""torchrun support: process group set-up, rank checks, small collective helpers, and the
device and CPU threads of each process.

Without torchrun (no ``WORLD_SIZE`` in the environment) everything here is a no-op on one
process, so the same training code runs on one CPU, one GPU or many processes.
"""

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from common import InvalidInput, available_cores


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process logs to MLflow, writes checkpoints and prints the run id."""
        return self.rank == 0


def from_environment() -> DistInfo:
    """The ranks torchrun put in the environment (one process when there are none)."""
    env = os.environ
    world_size = int(env.get("WORLD_SIZE", "1"))
    return DistInfo(
        rank=int(env.get("RANK", "0")),
        world_size=world_size,
        local_rank=int(env.get("LOCAL_RANK", "0")),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", str(world_size))),
    )


def init(info: DistInfo, device: torch.device) -> None:
    """Join the process group: NCCL on GPUs, gloo on CPUs."""
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def broadcast(obj: Any, info: DistInfo) -> Any:
    """``obj`` of the main process, on every process."""
    if not (info.enabled and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_all(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all processes."""
    if not (info.enabled and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def resolve_device(name: str, dist_info: DistInfo) -> torch.device:
    """``auto`` is the GPU when there is one; under torchrun each process takes its local GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InvalidInput(
            f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInput("--device cuda was given but PyTorch sees no GPU; use --device cpu.")
        device = torch.device(
            "cuda", dist_info.local_rank if dist_info.enabled else device.index or 0
        )
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return device


def omp_threads(value: str | None) -> int | None:
    """The thread count an ``OMP_NUM_THREADS`` value sets (its first level: ``4`` or ``4,2``);
    None when unset or not a count of at least 1."""
    try:
        threads = int((value or "").split(",")[0].strip())
    except ValueError:
        return None
    return threads if threads > 0 else None


def cpu_threads(requested: int, dist_info: DistInfo) -> int:
    """``requested``; else, for a single local process, ``OMP_NUM_THREADS`` when set; else the
    cores this process may use (``common.available_cores``: ``taskset``, a container's CPU
    quota) shared among the local processes. (Under torchrun
    with several local processes the variable is not read: torchrun sets it to 1 itself when it
    is unset, which cannot be told from a user's 1; ``--threads`` sets theirs.) The count
    changes the trained weights: the run records it."""
    if requested > 0:
        return requested
    omp = omp_threads(os.environ.get("OMP_NUM_THREADS"))
    if omp is not None and dist_info.local_world_size == 1:
        return omp
    return max(1, available_cores() // dist_info.local_world_size)
