"""Classical, training-free enhancement baselines: per-image gamma, CLAHE on Lab L, histogram equalisation on HSV V.

Every learned model should be compared with these; they are registered generators (tag ``baseline``, contract
``GeneratorContract("none")``), so ``zoo enhance --generator clahe`` and ``zoo eval --model baseline:clahe`` use
them without a checkpoint. They have no weights and no parameters to learn.

The colour conversions and equalisations are kornia's (``kornia.color.rgb_to_lab``/``lab_to_rgb``,
``rgb_to_hsv``/``hsv_to_rgb``, ``kornia.enhance.equalize_clahe``, ``kornia.enhance.equalize``); their results agree
with OpenCV's ``cv2.createCLAHE`` on the 8-bit L of ``COLOR_RGB2Lab`` and ``cv2.equalizeHist`` on the V of
``COLOR_RGB2HSV`` to within a few 8-bit levels (tests/test_baselines.py measures it on real photos).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from zoo.contracts import Generator, GeneratorContract
from zoo.editing.local import CHANNELS, clahe
from zoo.errors import InputError
from zoo.registry import register

__all__ = ["CLAHE", "GammaToMean", "HistogramEqualization", "equalize_hist", "luma"]

_LUMA = (0.299, 0.587, 0.114)  # BT.601


def luma(x: Tensor) -> Tensor:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B``.

    Args:
        x: RGB images in [0, 1].

    Returns:
        The luma, in [0, 1].

    Shape:
        ``N x 3 x H x W`` -> ``N x 1 x H x W``.

    Example:
        >>> luma(torch.ones(1, 3, 2, 2)).flatten().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    w = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _check(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 3:
        got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise InputError(f"generator {name!r} takes N x 3 x H x W RGB images in [0, 1], got {got}.")
    if not x.is_floating_point():
        raise InputError(
            f"generator {name!r} takes float images in [0, 1], got dtype {x.dtype} (divide 8-bit images by 255)."
        )


class _Baseline(Generator):
    """Shared by the baselines: training-free (no parameters, nothing to learn), float32 maths."""

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> GeneratorContract:
        return GeneratorContract("none")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._args().items())

    def _args(self) -> dict[str, Any]:
        return {}


@register("generator", "gamma", tags=("baseline",))
class GammaToMean(_Baseline):
    """Per-image gamma that brings the mean luma to a target: ``out = x ** g``, one ``g`` per image.

    ``g`` is found by bisection on ``log g`` so that the mean BT.601 luma of ``x ** g`` (computed on every k-th
    pixel, at most ``solve_size`` a side) equals ``target``; the same ``g`` is applied to R, G and B, so hues
    are kept and a bright image is darkened as a dark one is brightened. ``g`` is kept in ``[1/max_gamma,
    max_gamma]``, so a black or a flat image stays as it is within that range.

    Args:
        target: the mean luma to reach, in (0, 1) (default 0.45).
        max_gamma: the largest correction either way (``g`` and ``1/g`` at most this).
        solve_size: longest side of the thumbnail the gamma is solved on.

    Shape:
        ``N x 3 x H x W`` in [0, 1] -> ``{"image": N x 3 x H x W in [0, 1], "gamma": N}``.

    Example:
        >>> x = torch.full((1, 3, 8, 8), 0.1)
        >>> out = GammaToMean(target=0.45)(x)
        >>> round(out["image"].mean().item(), 3)
        0.45
    """

    def __init__(self, target: float = 0.45, max_gamma: float = 10.0, solve_size: int = 256) -> None:
        super().__init__()
        if not 0.0 < float(target) < 1.0:
            raise InputError(f"generator 'gamma': target must be in (0, 1), got {target}.")
        if float(max_gamma) <= 1.0:
            raise InputError(f"generator 'gamma': max_gamma must be > 1, got {max_gamma}.")
        if int(solve_size) < 8:
            raise InputError(f"generator 'gamma': solve_size must be >= 8, got {solve_size}.")
        self.target = float(target)
        self.max_gamma = float(max_gamma)
        self.solve_size = int(solve_size)

    def _args(self) -> dict[str, Any]:
        return {"target": self.target, "max_gamma": self.max_gamma, "solve_size": self.solve_size}

    def solve(self, x: Tensor, iterations: int = 40) -> Tensor:
        """The per-image gamma ``N`` that brings the mean luma of ``x ** g`` to ``target``."""
        # a strided subsample keeps the distribution of pixel values (an averaged thumbnail would not: x ** g is
        # not linear, so the mean of a blurred image's gamma differs from the full image's)
        stride = max(1, -(-max(x.shape[-2:]) // self.solve_size))
        thumb = x[..., ::stride, ::stride].float().clamp(0, 1)
        lo = torch.full((x.shape[0],), -torch.log(torch.tensor(self.max_gamma)).item(), device=x.device)
        hi = -lo
        for _ in range(iterations):  # mean luma of x ** exp(t) decreases with t: bisection on t = log g
            mid = (lo + hi) / 2
            mean = luma(thumb.pow(mid.exp().view(-1, 1, 1, 1))).mean(dim=(1, 2, 3))
            too_dark = mean < self.target
            hi = torch.where(too_dark, mid, hi)
            lo = torch.where(too_dark, lo, mid)
        return ((lo + hi) / 2).exp()

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        _check("gamma", images)
        g = self.solve(images)
        out = images.float().clamp(0, 1).pow(g.view(-1, 1, 1, 1))
        return {"image": out.to(images.dtype), "gamma": g}


@register("generator", "clahe", paper="Zuiderveld, Graphics Gems IV 1994", tags=("baseline",))
class CLAHE(_Baseline):
    """Contrast-limited adaptive histogram equalisation of the L channel of CIE Lab (a and b are kept).

    L (0..100) is scaled to [0, 1], equalised by ``kornia.enhance.equalize_clahe`` (per tile of a
    ``grid x grid`` layout, histograms clipped at ``clip_limit`` times the mean bin count, bilinear between
    tiles, as OpenCV's ``createCLAHE``), and the image converted back to RGB (out-of-gamut values clipped).

    Args:
        clip_limit: contrast limit (OpenCV's ``clipLimit``; 0 disables clipping, i.e. plain AHE).
        grid: tiles per side (OpenCV's ``tileGridSize``).
        channel: ``"lightness"`` (Lab L, the classical baseline) or ``"value"`` (HSV V: hue and saturation kept).

    Shape:
        ``N x 3 x H x W`` in [0, 1] -> ``{"image": N x 3 x H x W in [0, 1]}``.

    Example:
        >>> x = torch.rand(1, 3, 64, 64) * 0.2
        >>> y = CLAHE()(x)["image"]
        >>> y.shape, bool(y.mean() > x.mean())
        (torch.Size([1, 3, 64, 64]), True)
    """

    def __init__(self, clip_limit: float = 2.0, grid: int = 8, channel: str = "lightness") -> None:
        super().__init__()
        if channel not in CHANNELS:
            raise InputError(f"generator 'clahe': channel must be one of {', '.join(CHANNELS)}, got {channel!r}.")
        self.channel = channel
        if float(clip_limit) < 0:
            raise InputError(f"generator 'clahe': clip_limit must be >= 0, got {clip_limit}.")
        if int(grid) < 1:
            raise InputError(f"generator 'clahe': grid must be >= 1, got {grid}.")
        self.clip_limit = float(clip_limit)
        self.grid = int(grid)

    def _args(self) -> dict[str, Any]:
        return {"clip_limit": self.clip_limit, "grid": self.grid, "channel": self.channel}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        _check("clahe", images)
        if min(images.shape[-2:]) < 2 * self.grid:
            raise InputError(
                f"generator 'clahe' needs images of at least {2 * self.grid} px a side for a {self.grid} x "
                f"{self.grid} tile grid, got {tuple(images.shape[-2:])}."
            )
        out = clahe(images.float().clamp(0, 1), self.clip_limit, self.grid, self.channel)
        return {"image": out.clamp(0, 1).to(images.dtype)}


def equalize_hist(v: Tensor) -> Tensor:
    """OpenCV's ``equalizeHist`` of one channel, batched: 8-bit levels mapped through the normalised histogram CDF.

    Each image is quantised to 256 levels; level ``i`` maps to ``round(255 (cdf(i) - cdf_min) / (n - cdf_min))``
    where ``cdf_min`` is the count of the darkest level present (which maps to 0). A flat image is left as it is.
    ``kornia.enhance.equalize`` follows PIL's ``ImageOps.equalize`` instead (exclusive CDF, brightest level left out
    of the scale), which on dark photos differs from OpenCV by tens of levels, so the baseline uses this one.

    Args:
        v: one channel in [0, 1].

    Returns:
        The equalised channel, in [0, 1] (multiples of 1/255).

    Shape:
        ``N x 1 x H x W`` -> ``N x 1 x H x W``.

    Example:
        >>> v = torch.tensor([0.0, 0.0, 0.1, 0.2]).view(1, 1, 2, 2)
        >>> (equalize_hist(v) * 255).round().flatten().tolist()
        [0.0, 0.0, 128.0, 255.0]
    """
    n = v.shape[0]
    levels = torch.round(v.clamp(0, 1).reshape(n, -1) * 255.0).long()
    hist = torch.zeros(n, 256, dtype=torch.float64, device=v.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    cdf = hist.cumsum(dim=1)
    total = cdf[:, -1:]
    cdf_min = hist.gather(1, (hist > 0).to(torch.uint8).argmax(dim=1, keepdim=True))
    span = total - cdf_min
    lut = torch.round((cdf - cdf_min).clamp(min=0) * 255.0 / span.clamp(min=1.0))
    identity = torch.arange(256, dtype=torch.float64, device=v.device).expand(n, 256)
    lut = torch.where(span > 0, lut, identity)  # one level only: OpenCV leaves the image unchanged
    return (lut.gather(1, levels) / 255.0).to(v.dtype).view_as(v)


@register("generator", "histogram_equalization", tags=("baseline",))
class HistogramEqualization(_Baseline):
    """Global histogram equalisation of the V channel of HSV (hue and saturation are kept).

    V = max(R, G, B) (``kornia.color.rgb_to_hsv``) is equalised with OpenCV's formula (:func:`equalize_hist`: 256
    levels, the normalised cumulative histogram as lookup table) and the image converted back with
    ``kornia.color.hsv_to_rgb``, so each pixel's RGB is scaled by ``V' / V``: OpenCV's ``equalizeHist`` on the V of
    ``COLOR_RGB2HSV``, without OpenCV's 8-bit hue rounding.

    Shape:
        ``N x 3 x H x W`` in [0, 1] -> ``{"image": N x 3 x H x W in [0, 1]}``.

    Example:
        >>> x = torch.linspace(0, 0.3, 64 * 64).view(1, 1, 64, 64).repeat(1, 3, 1, 1)
        >>> y = HistogramEqualization()(x)["image"]
        >>> round(y.max().item(), 3), bool(y.mean() > 0.4)
        (1.0, True)
    """

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        from kornia.color import hsv_to_rgb, rgb_to_hsv

        _check("histogram_equalization", images)
        x = images.float().clamp(0, 1)
        hsv = rgb_to_hsv(x)
        v = equalize_hist(hsv[:, 2:])
        out = hsv_to_rgb(torch.cat((hsv[:, :2], v), dim=1))
        return {"image": out.clamp(0, 1).to(images.dtype)}
