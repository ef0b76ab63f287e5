"""Differentiable filters of Hu et al., "Exposure: A White-Box Photo Post-Processing Framework" (ACM TOG 2018).

They act directly on sRGB in [0, 1] and take several parameters each (a software flattens them). Ranges follow
the paper's ``tanh_range`` bounds where it gives them; every filter is the identity at its neutral value and maps
[0, 1] into [0, 1].
"""

from __future__ import annotations

import kornia
import torch
from torch import Tensor

from zoo.editing.base import Operator, ParamSpec
from zoo.registry import register

PAPER = "Hu et al., ACM TOG 2018"
TAGS = ("exposure",)
CURVE_STEPS = 8


def exposure_gain(x: Tensor, ev: Tensor) -> Tensor:
    """``x 2^ev``, clipped to [0, 1]. ``ev``: ``N``."""
    return (x * torch.exp2(ev).view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def gamma(x: Tensor, g: Tensor, eps: float = 1e-3) -> Tensor:
    """Gamma ``x^(1/g)`` (g > 1 brightens), in the form ``((x + e)^(1/g) - e^(1/g)) / ((1 + e)^(1/g) - e^(1/g))``.

    The offset ``e`` keeps the gradient finite at black; 0 maps to 0, 1 to 1, and ``g = 1`` is the identity.
    """
    k = (1.0 / g).view(-1, 1, 1, 1)
    lo = eps**k
    return (((x + eps) ** k - lo) / ((1.0 + eps) ** k - lo)).clamp(0.0, 1.0)


def white_balance(x: Tensor, gains: Tensor) -> Tensor:
    """Per-channel gains ``N x 3``, normalised to keep luminance (0.27 R + 0.67 G + 0.06 B of the gains), clipped."""
    lum = (gains * gains.new_tensor([0.27, 0.67, 0.06])).sum(dim=1, keepdim=True)
    return (x * (gains / lum).view(-1, 3, 1, 1)).clamp(0.0, 1.0)


def _curve(x: Tensor, slopes: Tensor) -> Tensor:
    """Monotone piecewise-linear curve with ``L`` equal segments (Hu et al., eq. 5).

    ``f(x) = L / sum(k) * sum_i k_i clip(x - i / L, 0, 1 / L)``, evaluated by a gather on the segment index
    (O(HW) memory). ``x``: ``N x C x H x W``; ``slopes``: ``N x C x L`` positive. f(0) = 0, f(1) = 1; equal
    slopes give the identity.
    """
    n, c, h, w = x.shape
    steps = slopes.shape[-1]
    kn = slopes * (steps / slopes.sum(dim=-1, keepdim=True))  # normalised: the curve ends at 1
    base = torch.cumsum(kn, dim=-1) / steps - kn / steps  # value at the start of each segment
    j = torch.floor(x.detach() * steps).clamp(0, steps - 1).long().view(n, c, h * w)
    b = torch.gather(base, 2, j).view(n, c, h, w)
    k = torch.gather(kn, 2, j).view(n, c, h, w)
    return (b + k * (x - j.view(n, c, h, w).to(x.dtype) / steps)).clamp(0.0, 1.0)


def tone_curve(x: Tensor, slopes: Tensor) -> Tensor:
    """The same 8-segment monotone curve on all channels; ``slopes``: ``N x 8`` in [0.5, 2]."""
    return _curve(x, slopes.unsqueeze(1).expand(-1, x.shape[1], -1))


def color_curves(x: Tensor, slopes: Tensor) -> Tensor:
    """One 8-segment monotone curve per channel; ``slopes``: ``N x 24`` (R0..R7, G0..G7, B0..B7) in [0.5, 2]."""
    return _curve(x, slopes.view(x.shape[0], 3, -1))


def bw_mix(x: Tensor, amount: Tensor) -> Tensor:
    """Blend with the greyscale image (kornia's ITU-R 601 weights): 0 keeps the colour, 1 is black and white."""
    grey = kornia.color.rgb_to_grayscale(x)
    a = amount.view(-1, 1, 1, 1)
    return x * (1.0 - a) + grey * a


def _slots(prefix: str, n: int, low: float, high: float, neutral: float, log: bool) -> tuple[ParamSpec, ...]:
    return tuple(ParamSpec(f"{prefix}{i}", low, high, neutral, log) for i in range(n))


@register("editor", "exposure_gain", paper=PAPER, tags=TAGS)
class ExposureGain(Operator):
    """Exposure in stops: multiplies linear-ish sRGB by 2^ev (ev in [-3.5, 3.5]), clipped."""

    params = (ParamSpec("", -3.5, 3.5, 0.0),)
    monotone = "luminance"

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        return exposure_gain(x, p[:, 0])


@register("editor", "gamma", paper=PAPER, tags=TAGS)
class Gamma(Operator):
    """Gamma curve x^(1/g), g in [1/3, 3] (g > 1 brightens the mid-tones)."""

    params = (ParamSpec("", 1.0 / 3.0, 3.0, 1.0, log=True),)
    monotone = "luminance"

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        return gamma(x, p[:, 0])


@register("editor", "white_balance", paper=PAPER, tags=TAGS)
class WhiteBalance(Operator):
    """White balance: three channel gains in [0.5, 2], normalised to keep luminance."""

    params = (
        ParamSpec("r", 0.5, 2.0, 1.0, log=True),
        ParamSpec("g", 0.5, 2.0, 1.0, log=True),
        ParamSpec("b", 0.5, 2.0, 1.0, log=True),
    )

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        return white_balance(x, p)


@register("editor", "tone_curve", paper=PAPER, tags=TAGS)
class ToneCurve(Operator):
    """Tone curve: 8-segment monotone piecewise-linear curve, slopes in [0.5, 2], shared by the channels."""

    params = _slots("s", CURVE_STEPS, 0.5, 2.0, 1.0, True)

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        return tone_curve(x, p)


@register("editor", "color_curves", paper=PAPER, tags=TAGS)
class ColorCurves(Operator):
    """Colour curves: one 8-segment monotone curve per channel (3 x 8 slopes in [0.5, 2])."""

    params = (
        _slots("r", CURVE_STEPS, 0.5, 2.0, 1.0, True)
        + _slots("g", CURVE_STEPS, 0.5, 2.0, 1.0, True)
        + _slots("b", CURVE_STEPS, 0.5, 2.0, 1.0, True)
    )

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        return color_curves(x, p)


@register("editor", "bw_mix", paper=PAPER, tags=TAGS)
class BWMix(Operator):
    """Black-and-white mix: blend with the greyscale image, amount in [0, 1]."""

    params = (ParamSpec("", 0.0, 1.0, 0.0),)
    monotone = "desaturate"

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        return bw_mix(x, p[:, 0])


EXPOSURE_ORDER = ("exposure_gain", "gamma", "white_balance", "tone_curve", "color_curves", "bw_mix")
