"""Device selection and the CUDA-only speed-ups (bf16 autocast, channels_last, torch.compile).

``--device auto|cpu|cuda|cuda:N|mps``. None of the CUDA options changes what happens on the CPU: on the CPU
autocast is off, the memory format stays contiguous and nothing is compiled, so CPU runs stay bit-reproducible.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from zoo.errors import ParameterError, TrainingError

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
ACCEPTED = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(spec: str = "auto", *, local_rank: int | None = None) -> torch.device:
    """Turn a device string from a recipe or the command line into a usable ``torch.device``.

    Args:
        spec: ``auto`` (CUDA if present, else MPS if present, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        local_rank: under DDP, the process's local rank: ``auto``/``cuda`` then mean ``cuda:<local_rank>``.

    Returns:
        The device.

    Raises:
        ParameterError: the string is not one of the accepted forms.
        TrainingError: the device is not present on this machine.
    """
    spec = str(spec).strip().lower()
    if not _DEVICE_RE.match(spec):
        raise ParameterError(f"Unknown device {spec!r}. Accepted: {ACCEPTED}.")
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        elif _mps_available():
            spec = "mps"
        else:
            spec = "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise TrainingError(
                "Device 'mps' was asked for, but Apple's MPS backend is not available here. Use --device cpu."
            )
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise TrainingError(
            f"Device {spec!r} was asked for, but CUDA is not available here. Use --device cpu (or auto)."
        )
    count = torch.cuda.device_count()
    if spec == "cuda":
        index = local_rank if local_rank is not None else torch.cuda.current_device()
    else:
        index = int(spec.split(":")[1])
    if index >= count:
        raise TrainingError(
            f"Device cuda:{index} was asked for, but this machine has {count} CUDA device(s) (0..{count - 1})."
        )
    return torch.device("cuda", index)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``enabled`` (no GradScaler needed for bf16); a no-op elsewhere."""
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def uses_channels_last(device: torch.device, enabled: bool = True) -> bool:
    """Whether networks and batches go to ``channels_last`` (CUDA only, where it speeds up convolutions)."""
    return enabled and device.type == "cuda"


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    """Move every tensor of a batch dict to ``device`` (4-D image tensors in channels_last when asked)."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=device.type == "cuda")
            if channels_last and value.dim() == 4:
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out


@contextlib.contextmanager
def fork_rng(device: torch.device) -> Iterator[None]:
    """Run a block without disturbing the global RNG streams (so logging never changes training)."""
    import random

    import numpy as np

    devices = [device.index or 0] if device.type == "cuda" else []
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
