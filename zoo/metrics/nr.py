"""No-reference image statistics: mean brightness, colourfulness (Hasler & Suesstrunk) and gray-level entropy.

These are descriptive: next to NIQE they tell whether an enhancer brightened a low-light photo, kept or
added colour, and used the tonal range. ``higher_is_better`` states the direction that is better *for
low-light enhancement*; brightness has none (``None``): compare it with the target set's rather than maximising it.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.metrics._common import check_images, luma_bt601
from zoo.registry import register


def mean_brightness(images: torch.Tensor) -> torch.Tensor:
    """Mean BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` per image, in [0, 1].

    Shape:
        ``images``: ``N x 3 x H x W`` (or ``N x 1 x H x W``) in [0, 1]; returns ``(N,)``.
    """
    x = check_images("mean_brightness", images, channels=(1, 3))
    return luma_bt601(x).mean(dim=(1, 2, 3))


def colorfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness ``M = sigma_rgyb + 0.3 mu_rgyb`` on 0..255 RGB.

    With ``rg = R - G`` and ``yb = (R + G) / 2 - B``: ``sigma_rgyb = sqrt(var(rg) + var(yb))`` (population
    variances) and ``mu_rgyb = sqrt(mean(rg)^2 + mean(yb)^2)``. 0 for a gray image; about 33 is "moderately",
    59 "quite" and 82 "highly" colourful on the paper's scale.

    Shape:
        ``images``: ``N x 3 x H x W`` in [0, 1]; returns ``(N,)``.
    """
    x = check_images("colorfulness", images).to(torch.float64) * 255.0
    r, g, b = x[:, 0].flatten(1), x[:, 1].flatten(1), x[:, 2].flatten(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = torch.sqrt(rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0))
    mu = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return (sigma + 0.3 * mu).to(images.dtype)


def gray_entropy(images: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits of the 256-bin histogram of the 8-bit BT.601 luma (0 .. 8), per image.

    Shape:
        ``images``: ``N x 3 x H x W`` (or ``N x 1 x H x W``) in [0, 1]; returns ``(N,)``.
    """
    x = check_images("entropy", images, channels=(1, 3))
    levels = torch.round(luma_bt601(x) * 255.0).long().clamp(0, 255).flatten(1)
    counts = torch.zeros(levels.shape[0], 256, dtype=torch.float64, device=x.device)
    counts.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    p = counts / counts.sum(dim=1, keepdim=True)
    ent = -(p * torch.log2(p.clamp_min(1e-300))).sum(dim=1)
    return ent.to(images.dtype)


@register("metric", "mean_brightness", tags=("no-reference", "statistic"))
class MeanBrightness(nn.Module):
    """Mean BT.601 luma in [0, 1] (a statistic with no better direction: compare it with the target set's)."""

    higher_is_better = None
    needs_reference = False

    def forward(self, pred: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        return mean_brightness(pred)


@register("metric", "colorfulness", paper="Hasler & Suesstrunk, SPIE 2003", tags=("no-reference", "color"))
class Colorfulness(nn.Module):
    """Hasler-Suesstrunk colourfulness on 0..255 RGB (higher is more colourful)."""

    higher_is_better = True
    needs_reference = False

    def forward(self, pred: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        return colorfulness(pred)


@register("metric", "entropy", tags=("no-reference", "statistic"))
class Entropy(nn.Module):
    """Shannon entropy (bits) of the 8-bit luma histogram, 0 .. 8 (higher uses more of the tonal range)."""

    higher_is_better = True
    needs_reference = False

    def forward(self, pred: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        return gray_entropy(pred)
