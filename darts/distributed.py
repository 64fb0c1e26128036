"""torch.distributed for darts: start from torchrun's environment, shard data, average gradients.

Under ``torchrun --nproc_per_node=N``, every process runs the same command. Weights train under
DistributedDataParallel. The alphas stay outside DDP's reducer: :class:`~darts.architecture.Architecture`
all-reduces each gradient it needs itself (the training gradient of the virtual step, the validation
gradient, the finite-difference term), so every rank takes the same alpha step, the one a single process
would take with the global batch. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch
import torch.distributed as dist

from darts.packing import unpacked


def init_from_environment() -> bool:
    """Join the process group torchrun describes; False when not launched so.

    Where torch sees CUDA GPUs the group reduces CUDA tensors with NCCL and CPU tensors with gloo (a run
    with ``device: cpu`` on a GPU machine works too); elsewhere it is gloo's. Each rank's device is
    ``cuda:LOCAL_RANK`` (:func:`darts.device.resolve`)."""
    if dist.is_available() and dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    dist.init_process_group(backend())
    return True


def backend() -> str:
    """The process group's backend here: NCCL for CUDA tensors and gloo for CPU ones, or gloo alone."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def all_reduce_mean(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The mean of each tensor over the ranks (the tensors themselves when not distributed)."""
    if not active():
        return list(tensors)
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    return [mean.to(t.dtype) for mean, t in zip(unpacked(flat, tensors), tensors)]


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if not active():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written a run's files)."""
    if active():
        dist.barrier()


def shard(indices: list[int]) -> list[int]:
    """This rank's share of ``indices``: every ``world_size``-th one, all shares of equal length."""
    size = world_size()
    usable = len(indices) - len(indices) % size
    return indices[rank():usable:size]
