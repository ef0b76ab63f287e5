"""PyTorch DDP helpers: process-group set-up from torchrun's environment, collectives, clean shutdown, launch.

``torchrun --nproc_per_node N -m zoo train RECIPE`` (or ``zoo train --nproc N``, which calls torchrun) starts N
processes; each reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from its environment. The backend is gloo on
the CPU and NCCL on CUDA. Rank 0 alone writes checkpoints and talks to MLflow.

Known pitfall: gloo can abort at interpreter exit if DDP modules and optimisers are still alive when the
process group is destroyed, so :func:`shutdown` is called only after the trainer dropped them and ran
``gc.collect()``.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist

from zoo.errors import TrainingError


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (a single process when they are absent)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise TrainingError(f"Malformed torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}.") from None
    return DistInfo(rank=rank, world_size=max(world, 1), local_rank=local)


def init(device: torch.device, info: DistInfo | None = None) -> DistInfo:
    """Join the process group when running under torchrun (no-op for a single process).

    Args:
        device: this process's device; CUDA selects NCCL, anything else gloo.
        info: the job layout (default: read from the environment).
    """
    info = info or env_info()
    if not info.enabled or dist.is_initialized():
        return info
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    kwargs: dict[str, Any] = {"backend": backend}
    if backend == "nccl":
        kwargs["device_id"] = device
    dist.init_process_group(**kwargs)
    return info


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if is_active():
        dist.barrier()


def reduce_metrics(metrics: Mapping[str, float], device: torch.device) -> tuple[dict[str, float], list[str]]:
    """Average metrics over ranks and report the non-finite ones (every rank gets the same answer).

    Every rank must pass the same keys. One small all-reduce per call.

    Returns:
        The averaged metrics and the sorted names whose value is NaN or Inf on at least one rank.
    """
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64)
    bad = (~torch.isfinite(values)).to(torch.float64)
    if is_active():
        packed = torch.cat([torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), bad])
        comm = packed.to(device) if device.type == "cuda" else packed
        dist.all_reduce(comm, op=dist.ReduceOp.SUM)
        packed = comm.cpu()
        n = len(keys)
        values, bad = packed[:n] / dist.get_world_size(), packed[n:]
        values = torch.where(bad > 0, torch.full_like(values, float("nan")), values)
    bad_names = [k for k, b in zip(keys, bad.tolist(), strict=True) if b > 0]
    return {k: float(v) for k, v in zip(keys, values.tolist(), strict=True)}, bad_names


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` for a single process."""
    if not is_active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not is_active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(module: torch.nn.Module, device: torch.device, **ddp_kwargs: Any) -> torch.nn.Module:
    """Wrap a trainable module in DistributedDataParallel when a process group is active."""
    if not is_active() or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        ddp_kwargs.setdefault("device_ids", [device.index])
        ddp_kwargs.setdefault("output_device", device.index)
    return DistributedDataParallel(module, **ddp_kwargs)


def shutdown() -> None:
    """Destroy the process group (call after dropping every DDP module and optimiser)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m zoo <argv>`` under torchrun with ``nproc`` local processes; returns the exit status."""
    if nproc < 1:
        raise TrainingError(f"--nproc must be at least 1, got {nproc}.")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "zoo",
        *argv,
    ]
    return subprocess.call(cmd)
