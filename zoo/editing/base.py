"""The editing-operator contract: declared parameters (range, neutral value), input checks, colour space.

An operator is a differentiable ``op(images, params)`` on ``N x 3 x H x W`` sRGB images in ``[0, 1]`` with one
parameter (or parameter group) per image. Each registered operator class declares:

- ``params``: its :class:`ParamSpec` s (name, range, neutral value, linear or log scale);
- ``pointwise``: whether each output pixel depends on its input pixel only (then it commutes with resizing);
- ``space``: the colour space its maths lives in (:mod:`zoo.editing.color`); as a standalone module it converts
  from sRGB and back, inside a :class:`~zoo.editing.software.Software` consecutive operators share the space;
- ``monotone``: the promise the property tests check (e.g. ``"luminance"``: raising the parameter does not
  lower the mean luminance), or ``None``.

Out-of-range parameters are clamped to the declared range (documented behaviour; :meth:`Software.from_dict`
rejects them instead, since there they are user mistakes). NaN/Inf parameters are an error.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from zoo.editing.color import convert
from zoo.errors import InputError


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One scalar parameter of an operator.

    Attributes:
        name: slot name (``""`` for single-parameter operators, whose slot is named after the operator).
        low, high: declared range (inclusive).
        neutral: value at which the operator is the identity.
        log: the unit mapping (used for RL levels) is linear in ``log(value)`` (e.g. gamma, gains).
    """

    name: str
    low: float
    high: float
    neutral: float
    log: bool = False

    def _t(self, v: float) -> float:
        return math.log(v) if self.log else v

    def from_unit(self, u: Tensor) -> Tensor:
        """Map ``u`` in [-1, 1] to the range, piecewise linearly (in log space if ``log``), with 0 -> neutral."""
        lo, mid, hi = self._t(self.low), self._t(self.neutral), self._t(self.high)
        v = torch.where(u < 0, mid + u * (mid - lo), mid + u * (hi - mid))
        return torch.exp(v) if self.log else v

    def to_unit(self, v: Tensor) -> Tensor:
        """Inverse of :meth:`from_unit` (values outside the range map outside [-1, 1])."""
        lo, mid, hi = self._t(self.low), self._t(self.neutral), self._t(self.high)
        t = torch.log(v) if self.log else v
        return torch.where(t < mid, (t - mid) / (mid - lo), (t - mid) / (hi - mid))


def check_images(images: Any, who: str) -> Tensor:
    """Validate an image batch: a floating ``N x 3 x H x W`` tensor, finite, in [0, 1].

    Raises:
        InputError: naming ``who`` and what it expects.
    """
    expect = f"{who} expects a float tensor N x 3 x H x W with values in [0, 1]"
    if not isinstance(images, Tensor):
        raise InputError(f"{expect}; got {type(images).__name__}.")
    if not images.is_floating_point():
        raise InputError(f"{expect}; got dtype {images.dtype} (convert with images.float() / 255).")
    if images.dim() != 4 or images.shape[1] != 3:
        raise InputError(f"{expect}; got shape {tuple(images.shape)}.")
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise InputError(f"{expect}; got an empty tensor of shape {tuple(images.shape)}.")
    with torch.no_grad():
        lo_t, hi_t = torch.aminmax(images)  # one pass; NaN propagates, +-Inf falls outside [0, 1]
        lo, hi = float(lo_t), float(hi_t)
        if not (lo >= 0.0 and hi <= 1.0) and not bool(torch.isfinite(images).all()):
            raise InputError(f"{expect}; the images contain NaN or Inf.")
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{expect}; got values in [{lo:.4g}, {hi:.4g}] (clamp or rescale them first).")
    return images


class Operator(nn.Module):
    """Base of the registered editing operators (function + thin module, kornia style).

    Subclasses set the class attributes and implement :meth:`native`.
    """

    params: ClassVar[tuple[ParamSpec, ...]] = ()
    pointwise: ClassVar[bool] = True
    space: ClassVar[str] = "srgb"
    monotone: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__()

    @property
    def op_name(self) -> str:
        return getattr(type(self), "__zoo_name__", type(self).__name__.lower())

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def slot_names(self) -> list[str]:
        """Names of the parameter slots (``op`` or ``op.slot``) as a software's named dict uses them."""
        if len(self.params) == 1 and not self.params[0].name:
            return [self.op_name]
        return [f"{self.op_name}.{p.name}" for p in self.params]

    @property
    def low(self) -> Tensor:
        return torch.tensor([p.low for p in self.params])

    @property
    def high(self) -> Tensor:
        return torch.tensor([p.high for p in self.params])

    def neutral(self, n: int = 1, device: torch.device | str | None = None) -> Tensor:
        """Neutral parameters, ``n x n_params`` float32."""
        row = torch.tensor([p.neutral for p in self.params], dtype=torch.float32, device=device)
        return row.expand(n, -1).clone()

    def check_params(self, params: Any, n: int, ref: Tensor) -> Tensor:
        """Bring ``params`` to ``n x n_params`` on ``ref``'s device/dtype, clamped to the declared range.

        Accepts a number (broadcast), a tensor of shape ``(n,)`` (single-parameter operators), ``(n_params,)``
        (broadcast) or ``(n, n_params)``.
        """
        k = self.n_params
        expect = (
            f"editor {self.op_name!r} expects {k} parameter(s) per image "
            f"({', '.join(self.slot_names)}; range {self.range_text()}) as a tensor N x {k}"
            + (" or N" if k == 1 else "")
        )
        if isinstance(params, (int, float)):
            params = torch.tensor(float(params))
        if not isinstance(params, Tensor):
            raise InputError(f"{expect}; got {type(params).__name__}.")
        p = params.to(device=ref.device, dtype=ref.dtype)
        if p.dim() == 0:
            p = p.expand(n, k)
        elif p.dim() == 1 and k == 1 and p.shape[0] == n:
            p = p.view(n, 1)
        elif p.dim() == 1 and p.shape[0] == k:
            p = p.view(1, k).expand(n, k)
        elif p.dim() == 2 and p.shape[1] == k and p.shape[0] in (1, n):
            p = p.expand(n, k)
        else:
            raise InputError(f"{expect}; got shape {tuple(params.shape)} for {n} image(s).")
        if not bool(torch.isfinite(p.detach()).all()):
            raise InputError(f"{expect}; the parameters contain NaN or Inf.")
        lo = self.low.to(p)
        hi = self.high.to(p)
        return torch.maximum(torch.minimum(p, hi), lo)

    def range_text(self) -> str:
        ranges = sorted({(p.low, p.high) for p in self.params})
        return ", ".join(f"[{lo:g}, {hi:g}]" for lo, hi in ranges)

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        """The operator's maths in its own space.

        Args:
            x: image in :attr:`space`, ``N x 3 x H x W``.
            p: checked parameters, ``N x n_params``.
        """
        raise NotImplementedError

    def forward(self, images: Tensor, params: Any) -> Tensor:
        """Apply the operator to sRGB images.

        Args:
            images: ``N x 3 x H x W`` float in [0, 1].
            params: ``N x n_params`` (or ``N`` for one parameter, or a number); clamped to the declared range.

        Returns:
            Edited images, same shape, dtype and device, in [0, 1].
        """
        check_images(images, f"editor {self.op_name!r}")
        p = self.check_params(params, images.shape[0], images)
        x = convert(images, "srgb", self.space)
        x = self.native(x, p)
        return convert(x, self.space, "srgb").clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"params={self.slot_names}, range={self.range_text()}, space={self.space!r}, pointwise={self.pointwise}"


def image_scale(x: Tensor) -> float:
    """The reference's filter scale: ``max(H, W) / 512``."""
    return max(x.shape[-2], x.shape[-1]) / 512.0
