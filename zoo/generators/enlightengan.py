"""EnlightenGAN's generator: the released ``sid_unet_resize`` attention U-Net, and a loader for the official weights.

Jiang et al., "EnlightenGAN: Deep Light Enhancement without Paired Supervision", IEEE TIP 2021. The released model
(``200_net_G_A.pth``) is this network with self-attention, times-residual and skip, BatchNorm after each
LeakyReLU, and max-pool downsampling. :func:`convert_official_state_dict` maps its keys (``module.conv1_1.weight``,
``module.bn1_1.running_mean``, ``module.deconv5.bias``, ..., ``module.conv10.weight``) onto this module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.contracts import Generator, GeneratorContract
from zoo.errors import DataError, InputError, load_failure
from zoo.layers.blocks import ConvActNorm
from zoo.registry import register

__all__ = [
    "EnlightenGANUNet",
    "attention_map",
    "convert_official_state_dict",
    "load_official_weights",
    "official_key",
]

_LUMA = (0.299, 0.587, 0.114)  # BT.601, as the official data loader computes the attention map


def attention_map(x: Tensor) -> Tensor:
    """EnlightenGAN's self-regularised attention map ``g = 1 - Y`` (BT.601 luma of the [0, 1] RGB image).

    Shape:
        ``N x 3 x H x W`` in [0, 1] -> ``N x 1 x H x W`` in [0, 1] (bright pixels get little attention).
    """
    w = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return 1.0 - (x * w).sum(dim=1, keepdim=True)


def _plain_eager() -> bool:
    """True outside tracing, export and compilation (which want the plain, functional graph)."""
    return not (torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export())


def _memory_format(t: Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )


def _pad16(x: Tensor, divide: int = 16) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Reflection-pad H and W up to a multiple of ``divide`` (the extra row/column goes bottom/right, as released)."""
    h, w = x.shape[-2], x.shape[-1]
    ph, pw = (divide - h % divide) % divide, (divide - w % divide) % divide  # no negative mod (ONNX)
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # left, right, top, bottom
    # no early return when nothing is padded: a shape branch would be frozen into an exported graph
    # reflection needs the pad to be smaller than the side; tiny images fall back to edge replication
    mode = "reflect" if min(h, w) > divide // 2 else "replicate"
    return F.pad(x, pads, mode=mode), pads


def _crop(x: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    left, right, top, bottom = pads
    return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, slope: float, norm: bool, last_norm: bool = True) -> None:
        super().__init__(ConvActNorm(cin, cout, 3, slope, norm), ConvActNorm(cout, cout, 3, slope, norm and last_norm))


@register("generator", "enlightengan_unet", paper="Jiang et al., IEEE TIP 2021", tags=("enlightengan",))
class EnlightenGANUNet(Generator):
    """EnlightenGAN's attention-guided U-Net (released ``sid_unet_resize``): output = latent * g + input.

    The [0, 1] input is mapped to [-1, 1] inside; the attention map ``g = 1 - Y`` (and its 2x2 max-pool pyramid)
    multiplies the bottleneck, every skip feature and the latent. Blocks are Conv3x3 -> LeakyReLU(0.2) -> BatchNorm;
    encoder 4->32, 32 | 64, 64 | 128, 128 | 256, 256 | 512 (x g/16), 512; decoder four times: bilinear x2, a 3x3 conv
    halving the channels, concat with the skip x g, two blocks (the very last without BN); head 1x1 conv 32->3.
    Inputs are reflection-padded to a multiple of 16 and cropped back; images wider than ``max_width`` are
    average-pooled by 2 first and the result upsampled by 2 (the official path for very large photos).
    8,636,675 parameters with the defaults.

    Args:
        base_channels: channels of the first stage (32 released); stages use 1, 2, 4, 8, 16 times it.
        norm: BatchNorm after each activation (released: true).
        self_attention: feed ``g`` as a 4th input channel and multiply features by it (released: true).
        times_residual: multiply the latent by ``g`` (released: true).
        skip: add the input to the latent (released: true); false returns the latent as the image.
        align_corners: bilinear upsampling mode; true reproduces the released weights (torch 0.3.1 semantics).
        max_width: widths above this take the downsample-by-2 path (official 2200); ``None`` disables it.
        negative_slope: LeakyReLU slope.
        clamp_in_training: clamp the output image to [0, 1] in training mode as well. The official trainer
            feeds the unclamped output to the discriminators and the VGG loss, so the default is false;
            in eval mode the image is always clamped.
        weights: optional path of weights to load: a zoo state dict, a zoo checkpoint, or the official
            ``200_net_G_A.pth`` (detected by its key names).

    Shape:
        input ``N x 3 x H x W`` in [0, 1]; returns ``{"image": N x 3 x H x W in [0, 1], "attention": N x 1 x H x W
        (g, in [0, 1]), "latent": N x 3 x H x W (the residual added to the input, in [-1, 1] units)}``.
    """

    def __init__(
        self,
        base_channels: int = 32,
        norm: bool = True,
        self_attention: bool = True,
        times_residual: bool = True,
        skip: bool = True,
        align_corners: bool = True,
        max_width: int | None = 2200,
        negative_slope: float = 0.2,
        clamp_in_training: bool = False,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        if base_channels < 1:
            raise InputError(f"generator 'enlightengan_unet': base_channels must be >= 1, got {base_channels}.")
        if max_width is not None and max_width < 32:
            raise InputError(f"generator 'enlightengan_unet': max_width must be >= 32 or null, got {max_width}.")
        c = base_channels
        widths = [c, 2 * c, 4 * c, 8 * c, 16 * c]
        self.self_attention = self_attention
        self.times_residual = times_residual
        self.skip = skip
        self.align_corners = align_corners
        self.max_width = max_width
        self.clamp_in_training = clamp_in_training
        cin = 4 if self_attention else 3
        # stages[0..4]: encoder (official conv1_* .. conv5_*); stages[5..8]: decoder (conv6_* .. conv9_*)
        stages = []
        for i, w in enumerate(widths):
            stages.append(_DoubleConv(cin if i == 0 else widths[i - 1], w, negative_slope, norm))
        for i, w in enumerate(reversed(widths[:-1])):
            stages.append(_DoubleConv(2 * w, w, negative_slope, norm, last_norm=i < 3))
        self.stages = nn.ModuleList(stages)
        # reduce[k]: the plain 3x3 conv after each bilinear x2 (official deconv5 .. deconv8)
        self.reduce = nn.ModuleList(nn.Conv2d(2 * w, w, 3, padding=1) for w in reversed(widths[:-1]))
        self.head = nn.Conv2d(c, 3, 1)  # official conv10
        if weights:
            self.load_weights(weights)

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> GeneratorContract:
        """Differentiable; any side of at least 1 px (inputs are padded to a multiple of 16, by edge replication
        when a side is too short to reflect, and cropped back)."""
        return GeneratorContract("backprop", min_size=1)

    # ------------------------------------------------------------------------------------------- forward

    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 3:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"generator 'enlightengan_unet' takes N x 3 x H x W RGB images, got {got}.")
        if not x.is_floating_point():
            raise InputError(
                f"generator 'enlightengan_unet' takes float images in [0, 1], got dtype {x.dtype} "
                "(divide 8-bit images by 255)."
            )

    def _up(self, x: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        if size is None:
            return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=self.align_corners)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.align_corners)

    def _core(self, x01: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The network on an image whose sides are multiples of 16: returns (output in [-1, 1], g, latent)."""
        g = attention_map(x01)
        x = x01 * 2.0 - 1.0
        gs = [g]
        for _ in range(4):
            gs.append(F.max_pool2d(gs[-1], 2))
        h = torch.cat((x, g), dim=1) if self.self_attention else x
        skips = []
        for i in range(4):
            h = self.stages[i](h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        first, second = self.stages[4]
        h = first(h)
        if self.self_attention:
            h = h * gs[4]
        h = second(h)
        for k in range(4):
            skip = skips[3 - k]
            up = self.reduce[k](self._up(h))
            if self.self_attention and not torch.is_grad_enabled() and _plain_eager():
                # inference: write the gated skip straight into the concatenation (one pass and one buffer less)
                h = torch.empty(
                    (up.shape[0], up.shape[1] + skip.shape[1], *up.shape[2:]),
                    dtype=up.dtype,
                    device=up.device,
                    memory_format=_memory_format(up),
                )
                h[:, : up.shape[1]].copy_(up)
                torch.mul(skip, gs[3 - k], out=h[:, up.shape[1] :])
            else:
                if self.self_attention:
                    skip = skip * gs[3 - k]
                h = torch.cat((up, skip), dim=1)
            h = self.stages[5 + k](h)
        latent = self.head(h)
        if self.times_residual:
            latent = latent * g
        out = latent + x if self.skip else latent
        return out, g, latent

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Enhance a batch. See the class docstring for shapes and ranges."""
        self._check(x)
        height, width = x.shape[-2], x.shape[-1]
        large = self.max_width is not None and width > self.max_width
        inp = F.avg_pool2d(x, 2) if large else x
        padded, pads = _pad16(inp)
        out, g, latent = self._core(padded)
        out, g, latent = _crop(out, pads), _crop(g, pads), _crop(latent, pads)
        if large:
            size = (height, width)
            out, g, latent = self._up(out, size), self._up(g, size), self._up(latent, size)
        image = (out + 1.0) * 0.5
        if self.clamp_in_training or not self.training:
            image = image.clamp(0.0, 1.0)
        return {"image": image, "attention": g, "latent": latent}

    # ------------------------------------------------------------------------------------------- weights

    def load_weights(self, path: str | os.PathLike[str], strict: bool = True) -> None:
        """Load weights from a file: the official ``200_net_G_A.pth``, a zoo state dict, or a zoo checkpoint.

        Args:
            path: the file (read with ``torch.load(weights_only=True)``).
            strict: every parameter and buffer must be present and no key may be left over.

        Raises:
            DataError: the file is missing or its keys or shapes do not fit this generator.
        """
        load_official_weights(self, path, strict=strict)


# ----------------------------------------------------------------------------------------------- official keys

_OFFICIAL_RE = re.compile(r"^(conv|bn)(\d+)_(\d)\.(.+)$")


def official_key(zoo_key: str) -> str:
    """The official (released) name of one of this module's state-dict keys, without the ``module.`` prefix."""
    m = re.match(r"^stages\.(\d+)\.(\d)\.(conv|norm)\.(.+)$", zoo_key)
    if m:
        stage, j, part, rest = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        prefix = "conv" if part == "conv" else "bn"
        return f"{prefix}{stage + 1}_{j + 1}.{rest}"
    m = re.match(r"^reduce\.(\d)\.(.+)$", zoo_key)
    if m:
        return f"deconv{int(m.group(1)) + 5}.{m.group(2)}"
    m = re.match(r"^head\.(.+)$", zoo_key)
    if m:
        return f"conv10.{m.group(1)}"
    raise KeyError(zoo_key)


def _zoo_key(official: str) -> str | None:
    m = _OFFICIAL_RE.match(official)
    if m:
        part, stage, j, rest = m.groups()
        if part == "conv" and stage == "10":
            return None
        return f"stages.{int(stage) - 1}.{int(j) - 1}.{'conv' if part == 'conv' else 'norm'}.{rest}"
    m = re.match(r"^deconv(\d)\.(.+)$", official)
    if m:
        return f"reduce.{int(m.group(1)) - 5}.{m.group(2)}"
    m = re.match(r"^conv10\.(.+)$", official)
    if m:
        return f"head.{m.group(1)}"
    return None


def _is_official(state: Mapping[str, Tensor]) -> bool:
    keys = [k[len("module.") :] if k.startswith("module.") else k for k in state]
    return any(k.startswith(("conv1_1.", "deconv5.", "conv10.")) for k in keys)


def convert_official_state_dict(state: Mapping[str, Tensor], model: nn.Module | None = None) -> dict[str, Tensor]:
    """Rename the official generator's keys to this module's.

    Strips the ``module.`` prefix that ``nn.DataParallel`` added, maps ``conv{i}_{j}``/``bn{i}_{j}`` to
    ``stages``, ``deconv{5..8}`` to ``reduce`` and ``conv10`` to ``head``, and adds the BatchNorm
    ``num_batches_tracked`` counters that torch 0.3.1 did not save (taken from ``model`` when given, else 0).

    Raises:
        DataError: a key that the released architecture does not have.
    """
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        bare = key[len("module.") :] if key.startswith("module.") else key
        new = _zoo_key(bare)
        if new is None:
            unknown.append(key)
            continue
        out[new] = value
    if unknown:
        raise DataError(
            f"generator 'enlightengan_unet': the official checkpoint has keys the released sid_unet_resize "
            f"architecture does not: {', '.join(unknown[:8])}{' ...' if len(unknown) > 8 else ''}."
        )
    for key in list(out):
        if key.endswith(".running_mean"):
            counter = key[: -len("running_mean")] + "num_batches_tracked"
            if counter not in out:
                ref = model.state_dict().get(counter) if model is not None else None
                out[counter] = ref.clone() if ref is not None else torch.tensor(0, dtype=torch.long)
    return out


def _read_state(path: str | os.PathLike[str]) -> Mapping[str, Tensor]:
    p = Path(path).expanduser()
    if p.is_dir():
        raise DataError(f"generator 'enlightengan_unet': weights {str(p)!r} is a folder; give the weights file.")
    if not p.is_file():
        raise DataError(f"generator 'enlightengan_unet': weights file {str(p)!r} does not exist.")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-tensor payloads
        raise DataError(
            f"generator 'enlightengan_unet': cannot read weights from {str(p)!r}: {load_failure(exc)}."
        ) from None
    if isinstance(obj, Mapping) and obj.get("format") == "enhance-zoo-checkpoint":
        from zoo.checkpoint_io import generator_state

        return generator_state(obj)
    if isinstance(obj, Mapping):
        for key in ("generator", "state_dict", "model"):  # zoo checkpoints nest the generator's state
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                return inner
            if isinstance(inner, Mapping) and isinstance(inner.get("generator"), Mapping):
                return inner["generator"]
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            return obj
    raise DataError(
        f"generator 'enlightengan_unet': {str(p)!r} is not a state dict (a mapping of names to tensors) nor a zoo "
        "checkpoint holding one."
    )


def load_official_weights(
    model: EnlightenGANUNet, path_or_state: str | os.PathLike[str] | Mapping[str, Tensor], strict: bool = True
) -> None:
    """Load the official ``200_net_G_A.pth`` (or a zoo state dict) into ``model``.

    Args:
        model: the zoo generator (its options must match the checkpoint's architecture).
        path_or_state: a file path or an already-loaded state dict.
        strict: require an exact key match.

    Raises:
        DataError: missing or extra keys, or shapes that differ, named in the message.
    """
    state = _read_state(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else path_or_state
    if _is_official(state):
        state = convert_official_state_dict(state, model)
    own = model.state_dict()
    bad_shapes = [
        f"{k} (file {tuple(v.shape)}, model {tuple(own[k].shape)})"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if bad_shapes:
        raise DataError(
            "generator 'enlightengan_unet': weights do not fit this architecture (check base_channels, "
            f"self_attention, norm): {'; '.join(bad_shapes[:5])}."
        )
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if strict and (missing or extra):
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''}")
        raise DataError(f"generator 'enlightengan_unet': weights do not match the model: {'; '.join(parts)}.")
    model.load_state_dict(state, strict=strict)
