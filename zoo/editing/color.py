"""Colour spaces of the reference editor (Kosugi & Yamasaki's ``edit_photo.py``), in RGB channel order.

The reference works in BGR; every formula here is written with named channels, so the RGB port is the same maths.
Its ProPhoto and HSV formulas are not the textbook ones (no chromatic adaptation, an ``eps`` in the HSV
saturation, sign-flag hue sextants), so they are reproduced here rather than taken from kornia.

Spaces used by the operators (``Operator.space``):

- ``"srgb"``: the input/output space, ``N x 3 x H x W`` in ``[0, 1]``.
- ``"prophoto"``: ProPhoto RGB primaries with the reference's gamma 1/1.8 (clipped to ``[0, 1]`` on entry).
- ``"logit"``: ``logit(clamp(prophoto, 1e-3, 1 - 1e-3))``.
- ``"hsv"``: the reference's HSV of the ProPhoto-gamma image, channels ``[h (degrees), s, v]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

# rownormalize(B_xyz2prophoto @ A_srgb2xyz), exactly as the reference computes it (float64).
_A = torch.tensor(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=torch.float64,
)
_B = torch.tensor(
    [[1.3459433, -0.2556075, -0.0511118], [-0.5445989, 1.5081673, 0.0205351], [0.0, 0.0, 1.2118128]],
    dtype=torch.float64,
)
_M = _B @ _A
SRGB_TO_PROPHOTO = _M / _M.sum(dim=1, keepdim=True)
PROPHOTO_TO_SRGB = torch.linalg.inv(SRGB_TO_PROPHOTO)

LOGIT_EPS = 1e-3
HSV_EPS = 1e-5
SPACES = ("srgb", "prophoto", "logit", "hsv")


def _matmul3(x: Tensor, m: Tensor) -> Tensor:
    """Apply a 3x3 colour matrix to ``N x 3 x H x W``."""
    return torch.einsum("ij,njhw->nihw", m.to(dtype=x.dtype, device=x.device), x)


def srgb_to_prophoto(x: Tensor) -> Tensor:
    """sRGB in [0, 1] -> ProPhoto gamma (reference ``Srgb2Photopro``), clipped to [0, 1].

    Shape: ``N x 3 x H x W`` -> same.
    """
    lin = torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)
    pp = _matmul3(lin, SRGB_TO_PROPHOTO).clamp(0.0, 1.0)
    # clamp the base of the power so the untaken branch has a finite gradient
    return torch.where(pp >= 1.0 / 512.0, pp.clamp(min=1.0 / 512.0) ** (1.0 / 1.8), pp * 16.0)


def prophoto_to_srgb(x: Tensor) -> Tensor:
    """ProPhoto gamma (any real values) -> sRGB in [0, 1] (reference ``Photopro2Srgb``)."""
    lin = torch.where(x < 1.0 / 32.0, x / 16.0, x.clamp(min=1.0 / 32.0) ** 1.8)
    s = _matmul3(lin, PROPHOTO_TO_SRGB).clamp(0.0, 1.0)
    thr = 0.04045 / 12.92
    return torch.where(s > thr, 1.055 * s.clamp(min=thr) ** (1.0 / 2.4) - 0.055, s * 12.92)


def to_logit(x: Tensor) -> Tensor:
    """Reference ``SigmoidInverse``: clamp to [1e-3, 1 - 1e-3], then ``-log(1/y - 1)``."""
    y = x.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS)
    return -torch.log(1.0 / y - 1.0)


def from_logit(x: Tensor) -> Tensor:
    """Reference ``Sigmoid``."""
    return torch.sigmoid(x)


def _pos(x: Tensor) -> Tensor:
    """``relu(sign(x))`` of the reference: 1 where x > 0, else 0."""
    return (x > 0).to(x.dtype)


def rgb_to_hsv_ref(x: Tensor) -> Tensor:
    """The reference's ``Bgr2Hsv`` (eps 1e-5, sign-flag hue), RGB channel order in, ``[h, s, v]`` out.

    h is in degrees; grey pixels get h = 0. Shape: ``N x 3 x H x W`` -> ``N x 3 x H x W``.
    """
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    mx = torch.maximum(torch.maximum(r, g), b)
    mn = torch.minimum(torch.minimum(r, g), b)
    b_g, g_r, r_b = b - g, g - r, r - b
    b_min = (1 - _pos(b_g)) * _pos(r_b)
    g_min = (1 - _pos(g_r)) * _pos(b_g)
    r_min = (1 - _pos(r_b)) * _pos(g_r)
    d = mx - mn + HSV_EPS
    h = (60 * g_r / d + 60) * b_min + (60 * b_g / d + 180) * r_min + (60 * r_b / d + 300) * g_min
    s = (mx - mn) / (mx + HSV_EPS)
    return torch.stack([h, s, mx], dim=1)


def hsv_ref_to_rgb(hsv: Tensor) -> Tensor:
    """The reference's ``Hsv2Bgr`` (hue wrapped to (0, 360], half-open sextants), RGB channel order out."""
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    h = (
        h * _pos(h) * (1 - _pos(h - 360))
        + (h - 360) * _pos(h - 360) * (1 - _pos(h - 720))
        + (h + 360) * _pos(h + 360) * (1 - _pos(h))
    )
    f60 = _pos(h) * (1 - _pos(h - 60))
    f120 = _pos(h - 60) * (1 - _pos(h - 120))
    f180 = _pos(h - 120) * (1 - _pos(h - 180))
    f240 = _pos(h - 180) * (1 - _pos(h - 240))
    f300 = _pos(h - 240) * (1 - _pos(h - 300))
    f360 = _pos(h - 300) * (1 - _pos(h - 360))
    c = v * s
    base = v - c
    h6 = h / 60
    b = base + c * (f240 + f300) + c * ((h6 - 2) * f180 + (6 - h6) * f360)
    g = base + c * (f120 + f180) + c * (h6 * f60 + (4 - h6) * f240)
    r = base + c * (f60 + f360) + c * ((h6 - 4) * f300 + (2 - h6) * f120)
    return torch.stack([r, g, b], dim=1)


_TO_PROPHOTO = {"logit": from_logit, "hsv": hsv_ref_to_rgb}
_FROM_PROPHOTO = {"logit": to_logit, "hsv": rgb_to_hsv_ref}


def convert(x: Tensor, src: str, dst: str) -> Tensor:
    """Move an image between the editor's spaces along the reference's path (through ProPhoto gamma).

    Args:
        x: image in space ``src``, ``N x 3 x H x W``.
        src, dst: one of :data:`SPACES`.

    Returns:
        The image in space ``dst``.
    """
    if src == dst:
        return x
    if src == "srgb":
        x = srgb_to_prophoto(x)
    elif src != "prophoto":
        x = _TO_PROPHOTO[src](x)
    # x is now ProPhoto gamma
    if dst == "srgb":
        return prophoto_to_srgb(x)
    if dst == "prophoto":
        return x
    return _FROM_PROPHOTO[dst](x)
