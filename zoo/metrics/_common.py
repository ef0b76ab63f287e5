"""Input checks and conversions shared by the metrics (kept light: torch is imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.errors import InputError

if TYPE_CHECKING:
    import torch

# Values outside [0, 1] by more than this are refused; float rounding of a clamp-free generator stays inside.
RANGE_TOLERANCE = 1e-4


def check_images(name: str, x: object, *, what: str = "pred", channels: tuple[int, ...] = (3,)) -> torch.Tensor:
    """Validate an ``N x C x H x W`` float tensor in ``[0, 1]`` and return it clamped to exactly ``[0, 1]``.

    Args:
        name: the metric's name, for the error message.
        x: the value to check.
        what: which argument it is (``pred`` or ``ref``).
        channels: accepted channel counts.

    Raises:
        InputError: anything else, with a sentence naming the metric and what it accepts.
    """
    import torch

    accepted = " or ".join(str(c) for c in channels)
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"metric {name!r}: {what} must be a torch.Tensor N x {accepted} x H x W, got {type(x).__name__}."
        )
    if not x.is_floating_point():
        raise InputError(
            f"metric {name!r}: {what} must be a float tensor in [0, 1], got dtype {x.dtype} "
            "(convert 8-bit images with x.float() / 255)."
        )
    if x.ndim == 3:
        raise InputError(
            f"metric {name!r}: {what} has shape {tuple(x.shape)}; it needs a batch N x {accepted} x H x W "
            "(use x.unsqueeze(0) for one image)."
        )
    if x.ndim != 4 or x.shape[1] not in channels:
        raise InputError(f"metric {name!r}: {what} must be N x {accepted} x H x W, got shape {tuple(x.shape)}.")
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise InputError(f"metric {name!r}: {what} is empty (shape {tuple(x.shape)}).")
    if not torch.isfinite(x).all():
        raise InputError(f"metric {name!r}: {what} contains NaN or Inf values.")
    lo, hi = float(x.min()), float(x.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise InputError(f"metric {name!r}: {what} must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}].")
    return x.clamp(0.0, 1.0)


def check_pair(
    name: str, pred: object, ref: object, *, needs_reference: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a prediction and its reference: both images, same shape."""
    if ref is None:
        raise InputError(
            f"metric {name!r} is full-reference: call it as metric(pred, ref) with the reference images "
            "(in `zoo eval`, give --ref DIR or --synthetic-dark DIR)."
        )
    p = check_images(name, pred, what="pred")
    r = check_images(name, ref, what="ref")
    if p.shape != r.shape:
        raise InputError(
            f"metric {name!r}: pred and ref must have the same shape, got {tuple(p.shape)} and {tuple(r.shape)}."
        )
    return p, r.to(device=p.device, dtype=p.dtype)


def luma_bt601(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of ``N x 3 x H x W`` (or pass-through ``N x 1 x H x W``).

    Returns:
        ``N x 1 x H x W`` in the input's range.
    """
    if x.shape[1] == 1:
        return x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b
