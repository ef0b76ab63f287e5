"""Inference-time fusion: fold BatchNorm into the convolutions and switch to channels_last.

Two patterns are folded, both exactly (eval-mode BatchNorm is a per-channel affine ``a * x + b``):

- ``Conv -> BatchNorm`` (adjacent in an ``nn.Sequential``): the classic fold into the conv's weight and bias.
- ``Conv -> LeakyReLU/ReLU -> BatchNorm`` (:class:`~zoo.layers.blocks.ConvActNorm`, EnlightenGAN's order). The
  activation is positively homogeneous, ``act(|a| z) = |a| act(z)``, so the scale ``|a|`` goes into the conv and
  the block becomes ``sign(a) * act(conv'(x)) + b``. The shift ``b`` cannot move into the next convolution
  exactly (zero padding at the borders and the attention multiplications would change), so it stays as one
  per-channel add; on the CPU the conv and the activation run as one oneDNN call, which removes a full pass
  over each feature map compared with the eager block.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.layers.blocks import ConvActNorm

__all__ = ["FusedConvAct", "fold_bn_into_conv", "fuse_for_inference"]


def _mkldnn_pointwise_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


class FusedConvAct(nn.Module):
    """``sign * act(conv(x)) + shift``: a :class:`ConvActNorm` with its BatchNorm folded in (inference only).

    Args:
        conv: the convolution, weights already scaled by ``|a|``.
        negative_slope: LeakyReLU slope (0 for ReLU).
        shift: per-channel ``b`` of the folded BatchNorm, or ``None``.
        sign: per-channel ``sign(a)`` (+1/-1), or ``None`` when all scales are positive.
    """

    def __init__(self, conv: nn.Conv2d, negative_slope: float, shift: Tensor | None, sign: Tensor | None) -> None:
        super().__init__()
        self.conv = conv
        self.negative_slope = float(negative_slope)
        self.register_buffer("shift", None if shift is None else shift.detach().reshape(1, -1, 1, 1).clone())
        self.register_buffer("sign", None if sign is None else sign.detach().reshape(1, -1, 1, 1).clone())
        self.use_mkldnn = _mkldnn_pointwise_available()

    def _conv_act(self, x: Tensor) -> Tensor:
        c = self.conv
        if (
            self.use_mkldnn
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and not torch.is_grad_enabled()
            and isinstance(c.padding, tuple)
            and c.padding_mode == "zeros"
            and not (torch.jit.is_tracing() or torch.compiler.is_compiling())
        ):
            return torch.ops.mkldnn._convolution_pointwise(
                x, c.weight, c.bias, list(c.padding), list(c.stride), list(c.dilation), c.groups,
                "leaky_relu", [self.negative_slope], "",
            )
        return F.leaky_relu(c(x), self.negative_slope, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self._conv_act(x)
        if self.sign is not None:
            return torch.addcmul(self.shift, y, self.sign) if self.shift is not None else y * self.sign
        return y.add_(self.shift) if self.shift is not None else y


def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv equal to ``bn(conv(x))`` with eval-mode BatchNorm statistics."""
    inv = torch.rsqrt(bn.running_var + bn.eps)
    a = bn.weight.detach() * inv if bn.affine else inv
    b = (bn.bias.detach() if bn.affine else 0.0) - bn.running_mean * a
    fused = copy.deepcopy(conv)
    fused.weight.data = conv.weight.detach() * a.reshape(-1, 1, 1, 1)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(a)
    fused.bias = nn.Parameter(bias * a + b)
    return fused


def _fuse_block(block: ConvActNorm) -> nn.Module:
    act = block.act
    slope = act.negative_slope if isinstance(act, nn.LeakyReLU) else 0.0 if isinstance(act, nn.ReLU) else None
    if slope is None or not isinstance(block.conv, nn.Conv2d):
        return block
    conv = copy.deepcopy(block.conv)
    bn = block.norm
    if bn is None:
        return FusedConvAct(conv, slope, None, None)
    if not isinstance(bn, nn.BatchNorm2d) or bn.running_var is None:
        return block
    inv = torch.rsqrt(bn.running_var + bn.eps)
    a = bn.weight.detach() * inv if bn.affine else inv
    b = (bn.bias.detach() if bn.affine else torch.zeros_like(a)) - bn.running_mean * a
    mag = a.abs()
    conv.weight.data = conv.weight.detach() * mag.reshape(-1, 1, 1, 1)
    if conv.bias is not None:
        conv.bias.data = conv.bias.detach() * mag
    sign = torch.where(a < 0, -1.0, 1.0).to(a.dtype)
    return FusedConvAct(conv, slope, b, sign if bool((a < 0).any()) else None)


def _fold_sequential(seq: nn.Sequential) -> None:
    items = list(seq.children())
    for i in range(len(items) - 1):
        conv, bn = items[i], items[i + 1]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None:
            seq[i] = fold_bn_into_conv(conv, bn)
            seq[i + 1] = nn.Identity()
            items[i + 1] = seq[i + 1]


def _fuse_children(module: nn.Module) -> None:
    if isinstance(module, nn.Sequential):
        _fold_sequential(module)
    for name, child in list(module.named_children()):
        if isinstance(child, ConvActNorm):
            setattr(module, name, _fuse_block(child))
        else:
            _fuse_children(child)


@torch.no_grad()
def fuse_for_inference(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """An inference copy of ``model``: BatchNorm folded into the convolutions, channels_last memory format.

    Args:
        model: any module; :class:`ConvActNorm` blocks and ``Conv2d -> BatchNorm2d`` pairs inside
            ``nn.Sequential`` containers are folded, the rest is kept as is.
        channels_last: convert parameters to the channels_last memory format (feed channels_last inputs too;
            the zoo's inference path does).

    Returns:
        A new module in eval mode, numerically equal to ``model.eval()`` up to float rounding. The original
        is left untouched. It is for inference only (no training: the BatchNorm statistics are baked in).
    """
    fused = copy.deepcopy(model).eval()
    _fuse_children(fused)
    for p in fused.parameters():
        p.requires_grad_(False)
    if channels_last:
        fused = fused.to(memory_format=torch.channels_last)
    fused.zoo_fused = True
    return fused
