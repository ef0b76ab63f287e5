"""Full-reference metrics (need the ground-truth image): PSNR, SSIM (kornia's) and CIE76 colour difference.

``channel="rgb"`` scores the three RGB channels (mean over channels for SSIM, over all values for PSNR);
``channel="y"`` scores the BT.601 studio-swing luma of MATLAB's ``rgb2ycbcr`` (``(16 + 65.481 R + 128.553 G +
24.966 B) / 255``, R, G, B in [0, 1]) as the super-resolution and low-light tables usually do.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from zoo.errors import InputError
from zoo.metrics._common import check_pair
from zoo.registry import register

Channel = Literal["rgb", "y"]


def to_y(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` luma of ``N x 3 x H x W`` in [0, 1], as ``N x 1 x H x W`` in [16/255, 235/255]."""
    w = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (x * w).sum(dim=1, keepdim=True)) / 255.0


def _channels(name: str, x: torch.Tensor, channel: str) -> torch.Tensor:
    if channel == "rgb":
        return x
    if channel == "y":
        return to_y(x)
    raise InputError(f"metric {name!r}: channel must be 'rgb' or 'y', got {channel!r}.")


def psnr(pred: torch.Tensor, ref: torch.Tensor, channel: Channel = "rgb") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (``max_val = 1``); identical images give ``inf``.

    Shape:
        ``pred``, ``ref``: ``N x 3 x H x W`` in [0, 1]; returns ``(N,)``.
    """
    import kornia

    p, r = check_pair("psnr", pred, ref)
    p, r = _channels("psnr", p, channel), _channels("psnr", r, channel)
    # kornia's psnr reduces over the whole batch: call it per image for per-image scores
    return torch.stack([kornia.metrics.psnr(p[i : i + 1], r[i : i + 1], 1.0) for i in range(p.shape[0])])


def ssim(pred: torch.Tensor, ref: torch.Tensor, channel: Channel = "rgb", window_size: int = 11) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image with kornia: Gaussian window 11 x 11, sigma 1.5,
    ``K1 = 0.01``, ``K2 = 0.03``, ``max_val = 1``, ``'valid'`` padding (no border effects), mean over pixels
    and channels.

    Shape:
        ``pred``, ``ref``: ``N x 3 x H x W`` in [0, 1], at least ``window_size`` pixels each way; returns ``(N,)``.
    """
    import kornia

    p, r = check_pair("ssim", pred, ref)
    if min(p.shape[-2:]) < window_size:
        raise InputError(
            f"metric 'ssim': images are {p.shape[-2]} x {p.shape[-1]}; the {window_size} x {window_size} window "
            "needs at least that many pixels each way."
        )
    p, r = _channels("ssim", p, channel), _channels("ssim", r, channel)
    return kornia.metrics.ssim(p, r, window_size, max_val=1.0, padding="valid").mean(dim=(1, 2, 3))


def delta_e76(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean CIE76 colour difference ``||Lab(pred) - Lab(ref)||`` per image (sRGB, D65; kornia's ``rgb_to_lab``).

    Shape:
        ``pred``, ``ref``: ``N x 3 x H x W`` in [0, 1]; returns ``(N,)`` in Delta E units (about 2.3 is a just
        noticeable difference).
    """
    import kornia

    p, r = check_pair("delta_e", pred, ref)
    lab_p, lab_r = kornia.color.rgb_to_lab(p), kornia.color.rgb_to_lab(r)
    return (lab_p - lab_r).pow(2).sum(dim=1).clamp_min(0).sqrt().mean(dim=(1, 2))


@register("metric", "psnr", tags=("full-reference",))
class PSNR(nn.Module):
    """Peak signal-to-noise ratio in dB against a reference (higher is better; kornia).

    Args:
        channel: ``rgb`` (all three channels) or ``y`` (BT.601 luma of MATLAB's ``rgb2ycbcr``).
    """

    higher_is_better = True
    needs_reference = True

    def __init__(self, channel: Channel = "rgb") -> None:
        super().__init__()
        _channels("psnr", torch.zeros(1, 3, 1, 1), channel)
        self.channel = channel

    def forward(self, pred: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        return psnr(pred, ref, self.channel)


@register("metric", "ssim", paper="Wang et al., IEEE TIP 2004", tags=("full-reference",))
class SSIM(nn.Module):
    """Structural similarity against a reference, 11 x 11 Gaussian window, sigma 1.5 (higher is better; kornia).

    Args:
        channel: ``rgb`` (SSIM per RGB channel, averaged) or ``y`` (BT.601 luma of MATLAB's ``rgb2ycbcr``).
        window_size: side of the Gaussian window (odd).
    """

    higher_is_better = True
    needs_reference = True

    def __init__(self, channel: Channel = "rgb", window_size: int = 11) -> None:
        super().__init__()
        _channels("ssim", torch.zeros(1, 3, 1, 1), channel)
        if window_size < 3 or window_size % 2 == 0:
            raise InputError(f"metric 'ssim': window_size must be odd and >= 3, got {window_size}.")
        self.channel = channel
        self.window_size = window_size

    def forward(self, pred: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        return ssim(pred, ref, self.channel, self.window_size)


@register("metric", "delta_e", paper="CIE 1976", tags=("full-reference", "color"))
class DeltaE(nn.Module):
    """Mean CIE76 colour difference Delta E*ab in CIELAB against a reference (lower is better)."""

    higher_is_better = False
    needs_reference = True

    def forward(self, pred: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        return delta_e76(pred, ref)
