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


LOOPBACK = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class MultiNode:
    """How this machine joins a multi-node job (torchrun's c10d rendezvous).

    Attributes:
        nnodes: machines in the job (torchrun ``--nnodes``; ``"MIN:MAX"`` for elastic jobs).
        rdzv_endpoint: ``HOST:PORT`` of the rendezvous (the same on every node; the host runs the store).
        rdzv_id: a job id shared by every node (default ``zoo``).
        node_rank: this node's rank, for launchers that need it (c10d assigns ranks itself when omitted).
    """

    nnodes: str = "1"
    rdzv_endpoint: str | None = None
    rdzv_id: str = "zoo"
    node_rank: int | None = None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def torchrun_args(nproc: int, nodes: MultiNode | None = None) -> tuple[list[str], dict[str, str]]:
    """The torchrun options (and extra environment) for ``nproc`` processes here and, optionally, several nodes.

    On one machine the rendezvous is c10d on ``127.0.0.1`` with a free port, this node's address is
    ``127.0.0.1`` and gloo talks over the loopback interface: nothing listens on other interfaces. With
    ``nodes`` the user's ``--nnodes`` / ``--rdzv-endpoint`` / ``--rdzv-id`` (/ ``--node-rank``) go to torchrun
    as given (a loopback endpoint keeps everything on loopback, e.g. two "nodes" on one machine in tests).

    Example:
        >>> torchrun_args(2)[0][:3]
        ['--nnodes=1', '--nproc-per-node=2', '--rdzv-backend=c10d']
    """
    if nproc < 1:
        raise TrainingError(f"--nproc must be at least 1, got {nproc}.")
    env: dict[str, str] = {}
    multi = nodes is not None and (nodes.rdzv_endpoint is not None or str(nodes.nnodes) != "1")
    if not multi:
        args = [
            "--nnodes=1",
            f"--nproc-per-node={nproc}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={LOOPBACK}:0",  # port 0: a free port, as torchrun --standalone picks
            f"--local-addr={LOOPBACK}",
            f"--rdzv-id=zoo-{os.getpid()}",
        ]
        loopback = True
    else:
        assert nodes is not None
        if not nodes.rdzv_endpoint:
            raise TrainingError(
                f"--nnodes {nodes.nnodes} needs --rdzv-endpoint HOST:PORT (the same on every node: one node's "
                "address and a free port; see docs/training.md)."
            )
        host = nodes.rdzv_endpoint.rsplit(":", 1)[0] if ":" in nodes.rdzv_endpoint else nodes.rdzv_endpoint
        if ":" not in nodes.rdzv_endpoint or not nodes.rdzv_endpoint.rsplit(":", 1)[1].isdigit():
            raise TrainingError(f"--rdzv-endpoint {nodes.rdzv_endpoint!r} is not HOST:PORT (e.g. 10.0.0.5:29500).")
        args = [
            f"--nnodes={nodes.nnodes}",
            f"--nproc-per-node={nproc}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={nodes.rdzv_endpoint}",
            f"--rdzv-id={nodes.rdzv_id}",
        ]
        if nodes.node_rank is not None:
            args.append(f"--node-rank={nodes.node_rank}")
        loopback = _is_loopback(host)
        if loopback:
            args.append(f"--local-addr={LOOPBACK}")
    if loopback:
        env["ZOO_BIND_LOOPBACK"] = "1"
        if sys.platform.startswith("linux") and "GLOO_SOCKET_IFNAME" not in os.environ:
            env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's sockets on loopback too
    return args, env


def launch(nproc: int, argv: Sequence[str], nodes: MultiNode | None = None) -> int:
    """Run ``python -m zoo <argv>`` under torchrun with ``nproc`` local processes; returns the exit status.

    See :func:`torchrun_args` for the rendezvous (loopback on one machine, the user's endpoint across nodes).
    """
    import signal

    args, env = torchrun_args(nproc, nodes)
    cmd = [sys.executable, "-m", "zoo.train.distributed", *args, "-m", "zoo", *argv]
    proc = subprocess.Popen(cmd, env={**os.environ, **env})

    def forward(signum: int, frame: Any) -> None:  # torchrun passes it on; the workers checkpoint and stop
        proc.send_signal(signum)

    def ignore(signum: int, frame: Any) -> None:  # Ctrl-C reaches torchrun and the workers from the terminal
        pass

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, ignore),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
    }
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def _loopback_stores() -> None:
    """Make torchrun's TCP stores (rendezvous and worker bootstrap) listen on 127.0.0.1 only.

    torch's ``TCPStore`` server listens on every interface whatever host it is given; it accepts a socket already
    bound (``master_listen_fd``), so the launcher binds one to loopback for each store torchrun creates.
    """
    import socket

    from torch.distributed import TCPStore
    from torch.distributed.elastic.rendezvous import c10d_rendezvous_backend, dynamic_rendezvous

    sockets: list[socket.socket] = []  # kept open for the life of the launcher

    def loopback_store(host_name: str, port: int, *args: Any, is_master: bool = False, **kwargs: Any) -> TCPStore:
        if not is_master or kwargs.get("master_listen_fd") is not None:
            return TCPStore(host_name, port, *args, is_master=is_master, **kwargs)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((LOOPBACK, int(port)))
            sock.listen(1024)
        except OSError as exc:  # the port is taken (e.g. another node on this machine hosts it): let torch retry
            sock.close()
            raise RuntimeError(f"cannot listen on {LOOPBACK}:{port}: {exc}") from None
        sockets.append(sock)
        return TCPStore(host_name, int(port), *args, is_master=True, master_listen_fd=sock.fileno(), **kwargs)

    c10d_rendezvous_backend.TCPStore = loopback_store  # type: ignore[assignment]

    def create_server(self: Any, master_addr: str, master_port: int) -> TCPStore:
        return loopback_store(master_addr, master_port, is_master=True, multi_tenant=True)

    dynamic_rendezvous.DynamicRendezvousHandler._create_tcp_store_server = create_server  # type: ignore[method-assign]


if __name__ == "__main__":  # python -m zoo.train.distributed <torchrun options> -m zoo ...
    if os.environ.pop("ZOO_BIND_LOOPBACK", "") == "1":
        _loopback_stores()
    from torch.distributed.run import main as _torchrun

    _torchrun(sys.argv[1:])
