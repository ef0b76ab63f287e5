"""Inference-time fusion: fold BatchNorm into the convolutions and switch to channels_last.

Two patterns are folded, both exactly (eval-mode BatchNorm is a per-channel affine ``a * x + b``):

- ``Conv -> BatchNorm`` (adjacent in an ``nn.Sequential``): the classic fold into the conv's weight and bias.
- ``Conv -> LeakyReLU/ReLU -> BatchNorm`` (:class:`~zoo.layers.blocks.ConvActNorm`, EnlightenGAN's order). The
  activation is positively homogeneous, ``act(|a| z) = |a| act(z)``, so the scale ``|a|`` goes into the conv and
  the block becomes ``sign(a) * act(conv'(x)) + b``. The shift ``b`` does not move into a next convolution
  without care (zero padding at the borders, the attention multiplications), so a lone block keeps it as one
  per-channel add; on the CPU the conv and the activation run as one oneDNN call, which removes a full pass
  over each feature map compared with the eager block.
- Two such blocks in a row (:class:`FusedConvActPair`): the first one's shift goes into the second conv's bias,
  and the one-pixel outer ring, where zero padding makes that inexact, is corrected afterwards.

:func:`prepare_for_inference` (what ``zoo enhance`` runs) adds prepacked oneDNN weights on the CPU.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.layers.blocks import ConvActNorm

__all__ = ["FusedConvAct", "FusedConvActPair", "fold_bn_into_conv", "fuse_for_inference", "prepare_for_inference"]


def _mkldnn_pointwise_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


def _pack(conv: nn.Conv2d) -> Tensor | None:
    """``conv``'s weight reordered for oneDNN (valid for any input size), or ``None`` where that is unavailable."""
    if not _mkldnn_pointwise_available() or conv.weight.device.type != "cpu" or conv.weight.dtype != torch.float32:
        return None
    if not isinstance(conv.padding, tuple) or conv.padding_mode != "zeros":
        return None
    try:
        w = conv.weight.detach().contiguous().to_mkldnn()
        return torch._C._nn.mkldnn_reorder_conv2d_weight(
            w,
            list(conv.padding),
            list(conv.stride),
            list(conv.dilation),
            conv.groups,
            [1, conv.in_channels * conv.groups, 64, 64],
        )
    except (RuntimeError, AttributeError, NotImplementedError):
        return None


class PackedConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that runs with a prepacked oneDNN weight on CPU float32 inference (eager).

    Made from an existing conv by :meth:`adopt` (same parameters, names and state dict); every other case
    (autograd, other devices or dtypes, tracing, compiling) runs the plain convolution.
    """

    packed: Tensor | None = None

    @classmethod
    def adopt(cls, conv: nn.Conv2d) -> bool:
        """Turn ``conv`` (an exact ``nn.Conv2d``) into a :class:`PackedConv2d` in place; false when not packable."""
        packed = _pack(conv)
        if packed is None:
            return False
        conv.__class__ = cls
        conv.packed = packed
        return True

    def forward(self, x: Tensor) -> Tensor:
        if (
            self.packed is not None
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and not torch.is_grad_enabled()
            and not (torch.jit.is_tracing() or torch.compiler.is_compiling())
        ):
            return torch.ops.mkldnn._convolution_pointwise(
                x,
                self.packed,
                self.bias,
                list(self.padding),
                list(self.stride),
                list(self.dilation),
                self.groups,
                "none",
                [],
                "",
            )
        return super().forward(x)


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
        self.packed: Tensor | None = None  # oneDNN-blocked weight, set by prepack() (not a buffer: opaque tensor)

    def prepack(self) -> None:
        """Reorder the weight once into oneDNN's blocked layout (saves the per-call reorder)."""
        self.packed = _pack(self.conv)

    def fast(self, x: Tensor) -> bool:
        """Whether ``x`` can take the one-call oneDNN conv + activation (CPU float32 inference, eager)."""
        c = self.conv
        return (
            self.use_mkldnn
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and not torch.is_grad_enabled()
            and isinstance(c.padding, tuple)
            and c.padding_mode == "zeros"
            and not (torch.jit.is_tracing() or torch.compiler.is_compiling())
        )

    def _conv_act(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        c = self.conv
        bias = c.bias if bias is None else bias
        if self.fast(x):
            weight = self.packed if self.packed is not None else c.weight
            return torch.ops.mkldnn._convolution_pointwise(
                x,
                weight,
                bias,
                list(c.padding),
                list(c.stride),
                list(c.dilation),
                c.groups,
                "leaky_relu",
                [self.negative_slope],
                "",
            )
        return F.leaky_relu(c._conv_forward(x, c.weight, bias), self.negative_slope, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self._conv_act(x)
        if self.sign is not None:
            return torch.addcmul(self.shift, y, self.sign) if self.shift is not None else y * self.sign
        return y.add_(self.shift) if self.shift is not None else y


class FusedConvActPair(nn.Sequential):
    """Two :class:`FusedConvAct` in a row with the first one's BatchNorm shift moved into the second conv.

    ``second(first(x))`` with ``first = act(conv1(x)) + b`` (no sign flips) and ``second`` a 3x3 stride-1 conv
    with zero padding 1 and a LeakyReLU (slope > 0). ``conv2(y + b) = conv2(y) + sum(W2 * b)`` everywhere
    except the one-pixel outer ring, where the zero padding does not see ``b``: there the pre-activation
    misses the taps that fall into the padding, a constant per output channel and ring position. So the pair
    runs ``act(conv2(y) + bias2')`` on the whole map (one oneDNN call, no pass over ``y`` for the shift) and
    corrects the ring afterwards: LeakyReLU is invertible, ``act(act^-1(z) - r)`` on about ``2 (H + W)`` pixels.
    Iterating it still yields ``first, second`` unchanged, so code that unpacks a stage (EnlightenGAN's
    bottleneck) keeps the plain semantics.
    """

    def __init__(self, first: FusedConvAct, second: FusedConvAct) -> None:
        super().__init__(first, second)
        w2 = second.conv.weight.detach()
        bias2 = second.conv.bias.detach() if second.conv.bias is not None else torch.zeros(w2.shape[0])
        taps = (w2 * first.shift.reshape(1, -1, 1, 1)).sum(dim=1)  # out x 3 x 3: what b adds through each tap
        self.register_buffer("inner_bias", (bias2 + taps.sum(dim=(1, 2))).clone())
        # what the padding takes away on the top/bottom rows and left/right columns, and the corner taps
        # (counted in both a row and a column)
        for name, side in (
            ("top", taps[:, 0]),
            ("bottom", taps[:, 2]),
            ("left", taps[:, :, 0]),
            ("right", taps[:, :, 2]),
        ):
            self.register_buffer(f"ring_{name}", side.sum(1).reshape(1, -1, 1, 1).clone())
        # per corner: its own tap minus the column side that the row fix will not see (3-D: no channels_last)
        corners = torch.stack(
            (
                taps[:, 0, 0] - taps[:, :, 0].sum(1),
                taps[:, 0, 2] - taps[:, :, 2].sum(1),
                taps[:, 2, 0] - taps[:, :, 0].sum(1),
                taps[:, 2, 2] - taps[:, :, 2].sum(1),
            )
        )
        self.register_buffer("corners", corners.reshape(4, 1, -1, 1).clone())

    @staticmethod
    def applies(first: nn.Module, second: nn.Module) -> bool:
        """Whether ``first -> second`` has the shape this fold needs."""
        if not (isinstance(first, FusedConvAct) and isinstance(second, FusedConvAct)):
            return False
        c = second.conv
        return (
            first.shift is not None
            and first.sign is None
            and second.negative_slope > 0
            and c.kernel_size == (3, 3)
            and c.stride == (1, 1)
            and c.padding == (1, 1)
            and c.dilation == (1, 1)
            and c.groups == 1
            and c.padding_mode == "zeros"
        )

    def _fix(self, z: Tensor, r: Tensor, corner: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``act(act^-1(z) - r)`` for a ring slice ``z`` (written back); ``corner`` adds the double-counted taps."""
        slope = self[1].negative_slope
        pre = torch.where(z > 0, z, z / slope) - r
        if corner is not None:
            pre[..., 0] += corner[0]
            pre[..., -1] += corner[1]
        z.copy_(F.leaky_relu(pre, slope))
        return z

    def forward(self, x: Tensor) -> Tensor:
        first, second = self[0], self[1]
        if not (first.fast(x) and second.fast(x)) or min(x.shape[-2:]) < 3:
            return second(first(x))
        y = first._conv_act(x)  # without its shift: it is in inner_bias and the ring correction
        z = second._conv_act(y, self.inner_bias)
        c = self.corners
        self._fix(z[..., 1:-1, :1], self.ring_left)
        self._fix(z[..., 1:-1, -1:], self.ring_right)
        self._fix(z[..., :1, :], self.ring_top, (c[0], c[1]))
        self._fix(z[..., -1:, :], self.ring_bottom, (c[2], c[3]))
        if second.sign is not None:
            return torch.addcmul(second.shift, z, second.sign) if second.shift is not None else z * second.sign
        return z.add_(second.shift) if second.shift is not None else z


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
            if isinstance(child, nn.Sequential) and len(child) == 2 and FusedConvActPair.applies(child[0], child[1]):
                setattr(module, name, FusedConvActPair(child[0], child[1]))


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


def _prepack_children(module: nn.Module) -> None:
    for child in module.children():
        if isinstance(child, FusedConvAct):
            child.prepack()
        elif type(child) is nn.Conv2d:
            PackedConv2d.adopt(child)
        else:
            _prepack_children(child)


@torch.no_grad()
def prepare_for_inference(model: nn.Module, example: Tensor | None = None) -> nn.Module:
    """The zoo's CPU/GPU inference copy of ``model``: what ``zoo enhance`` and ``zoo eval`` run.

    :func:`fuse_for_inference` (BatchNorm folded, shifts moved into the next conv, channels_last), then every
    convolution's weight reordered once into oneDNN's blocked layout so that no call reorders it again. The
    packed weights work for any input size (nothing is specialised to a shape, nothing is compiled); they are
    used for CPU float32 inference without autograd; every other case (autograd, another device or dtype,
    tracing, export) runs the plain convolutions of the same copy.

    Args:
        model: any module (a zoo generator).
        example: an optional input (``N x 3 x H x W``) run once, so that oneDNN builds its kernels before the
            first real image.

    Returns:
        A new module in eval mode, numerically equal to ``model.eval()`` up to float rounding (1e-6 on
        EnlightenGAN); the original is untouched.
    """
    fused = fuse_for_inference(model)
    if next((p.device.type for p in fused.parameters()), "cpu") == "cpu":
        _prepack_children(fused)
    if example is not None:
        fused(example.contiguous(memory_format=torch.channels_last))
    return fused
