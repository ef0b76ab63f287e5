"""Replay buffer of real and generated images for the discriminators' extra steps (the RL paper: last 1000 of each)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from zoo.errors import InputError


class ImageReplay:
    """Two ring buffers (real and generated) of 8-bit images, sampled independently.

    Images are stored as ``uint8`` (generated images the discriminators see are 8-bit already when the trainer
    quantises them; others are rounded), so 1000 of each at 64 x 64 take 24 MB and fit in a checkpoint.

    Args:
        capacity: how many images of each kind are kept (the oldest are overwritten).
        size: image side (square), or ``(H, W)``.
    """

    def __init__(self, capacity: int = 1000, size: int | tuple[int, int] = 64) -> None:
        if capacity < 1:
            raise InputError(f"replay buffer: capacity must be >= 1, got {capacity}.")
        self.capacity = int(capacity)
        self.shape = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.real = torch.zeros(self.capacity, 3, *self.shape, dtype=torch.uint8)
        self.fake = torch.zeros_like(self.real)
        self.count = 0  # images added so far (of each kind)

    @staticmethod
    def nbytes(capacity: int, size: tuple[int, int]) -> int:
        """Memory of a buffer of ``capacity`` real and generated images of ``size`` (both kinds)."""
        return 2 * capacity * 3 * size[0] * size[1]

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def add(self, real: Tensor, fake: Tensor) -> None:
        """Append a batch of real and a batch of generated images (``N x 3 x H x W`` in [0, 1], same N)."""
        shape = (3, *self.shape)
        if real.shape[1:] != shape or fake.shape[1:] != shape or real.shape[0] != fake.shape[0]:
            raise InputError(
                f"replay buffer: expects two batches N x 3 x {self.shape[0]} x {self.shape[1]} of the same N, got "
                f"{tuple(real.shape)} and {tuple(fake.shape)}."
            )
        n = real.shape[0]
        idx = (torch.arange(n) + self.count) % self.capacity
        self.real[idx] = _to_u8(real)
        self.fake[idx] = _to_u8(fake)
        self.count += n

    def sample(self, n: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """``n`` real and ``n`` generated images drawn uniformly (with replacement) from what is stored."""
        if len(self) == 0:
            raise InputError("replay buffer: cannot sample from an empty buffer.")
        i = torch.randint(len(self), (n,))
        j = torch.randint(len(self), (n,))
        return _to_float(self.real[i], device), _to_float(self.fake[j], device)

    def state_dict(self) -> dict[str, Any]:
        k = len(self)
        return {
            "capacity": self.capacity,
            "size": list(self.shape),
            "count": self.count,
            "real": self.real[:k].clone(),
            "fake": self.fake[:k].clone(),
        }

    @staticmethod
    def saved_shape(state: dict[str, Any]) -> tuple[int, int]:
        """The ``(H, W)`` of the images in a saved state (older states record one side)."""
        size = state["size"]
        return (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))

    @classmethod
    def from_state(cls, capacity: int, state: dict[str, Any]) -> ImageReplay:
        """A buffer of ``capacity`` images of the saved size, holding the saved images."""
        replay = cls(capacity, cls.saved_shape(state))
        replay.load_state_dict(state)
        return replay

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = self.saved_shape(state)
        if saved != self.shape:
            raise InputError(f"replay buffer: the saved images are {saved}, this run uses {self.shape}.")
        real, fake = state["real"], state["fake"]
        k = min(real.shape[0], self.capacity)
        self.real.zero_()
        self.fake.zero_()
        self.real[:k] = real[-k:] if k < real.shape[0] else real
        self.fake[:k] = fake[-k:] if k < fake.shape[0] else fake
        # same capacity: keep the write position; otherwise continue after what was kept
        self.count = int(state["count"]) if int(state["capacity"]) == self.capacity else k


def _to_u8(x: Tensor) -> Tensor:
    return torch.round(x.detach().float().clamp(0, 1) * 255).to(torch.uint8).cpu()


def _to_float(x: Tensor, device: torch.device | str) -> Tensor:
    return x.to(device=device, dtype=torch.float32) / 255.0
