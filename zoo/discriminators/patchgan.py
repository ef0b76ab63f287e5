"""EnlightenGAN's no-norm PatchGAN discriminator (official ``NoNormDiscriminator``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from zoo.contracts import Discriminator, DiscriminatorContract
from zoo.errors import InputError
from zoo.registry import register

__all__ = ["PatchGANNoNorm", "min_input_size", "patch_map_size"]


def patch_map_size(size: int, n_layers: int, kernel_size: int = 4, padding: int = 2) -> int:
    """Side of the score map for an input side ``size`` (``n_layers`` stride-2 convs, then two stride-1 convs)."""
    for _ in range(n_layers):
        size = (size + 2 * padding - kernel_size) // 2 + 1
    for _ in range(2):
        size = size + 2 * padding - kernel_size + 1
    return size


def min_input_size(n_layers: int, kernel_size: int = 4, padding: int = 2) -> int:
    """The smallest input side whose score map is at least 1 x 1 (see :func:`patch_map_size`).

    With the official padding ``ceil((k - 1) / 2)`` every side of at least 1 px gives a map (zero padding keeps
    it alive); a smaller padding makes the convs shrink the image, and the answer grows with ``n_layers``.

    Example:
        >>> min_input_size(5), min_input_size(3, kernel_size=4, padding=0)
        (1, 70)
    """
    size = 1
    while patch_map_size(size, n_layers, kernel_size, padding) < 1:
        size += 1
    return size


@register("discriminator", "patchgan_nonorm", paper="Jiang et al., IEEE TIP 2021", tags=("enlightengan",))
class PatchGANNoNorm(Discriminator):
    """No-norm PatchGAN of the official EnlightenGAN code: 4x4 convs, LeakyReLU 0.2, no normalisation.

    ``n_layers`` stride-2 convs from ``ndf`` channels doubling up to ``8 * ndf``, then a stride-1 conv and a
    stride-1 conv to one channel, all with padding ``ceil((k - 1) / 2)`` (2 for k = 4). Global discriminator:
    ``n_layers=5`` (11,154,369 parameters; 320 x 320 -> 13 x 13 map). Local: ``n_layers=4`` (6,959,553;
    32 x 32 -> 5 x 5).

    Args:
        in_channels: image channels.
        ndf: channels of the first conv.
        n_layers: number of stride-2 convs (>= 1).
        kernel_size: conv kernel side.
        negative_slope: LeakyReLU slope.
        use_sigmoid: end in a sigmoid, so the scores are probabilities in [0, 1] (the official
            ``NoNormDiscriminator``'s ``use_sigmoid``; EnlightenGAN trains without it). A Wasserstein or hinge
            objective needs unbounded scores: ``zoo recipe check`` refuses those with ``use_sigmoid: true``.

    Shape:
        input ``N x C x H x W`` (the zoo's [0, 1] images are mapped to [-1, 1] inside, as the official code saw
        them); output ``N x 1 x h x w`` raw scores (in [0, 1] with ``use_sigmoid``), ``h = patch_map_size(H,
        n_layers)``.

    Example:
        >>> import torch
        >>> d = PatchGANNoNorm(ndf=8, n_layers=4)
        >>> d(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1, 5, 5])
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 5,
        kernel_size: int = 4,
        negative_slope: float = 0.2,
        use_sigmoid: bool = False,
    ) -> None:
        super().__init__()
        if n_layers < 1 or ndf < 1 or in_channels < 1 or kernel_size < 1:
            raise InputError(
                f"discriminator 'patchgan_nonorm': n_layers, ndf, in_channels and kernel_size must be >= 1, got "
                f"{n_layers}, {ndf}, {in_channels}, {kernel_size}."
            )
        self.in_channels = in_channels
        self.n_layers = n_layers
        self.kernel_size = kernel_size
        pad = math.ceil((kernel_size - 1) / 2)
        self.padding = pad
        layers: list[nn.Module] = []
        cin = in_channels
        for n in range(n_layers):
            cout = ndf * min(2**n, 8)
            layers += [nn.Conv2d(cin, cout, kernel_size, stride=2, padding=pad), nn.LeakyReLU(negative_slope, True)]
            cin = cout
        cout = ndf * min(2**n_layers, 8)
        layers += [nn.Conv2d(cin, cout, kernel_size, stride=1, padding=pad), nn.LeakyReLU(negative_slope, True)]
        layers += [nn.Conv2d(cout, 1, kernel_size, stride=1, padding=pad)]
        if use_sigmoid:  # parameter-free, appended last: the state dict is the same either way
            layers.append(nn.Sigmoid())
        self.use_sigmoid = use_sigmoid
        self.model = nn.Sequential(*layers)

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> DiscriminatorContract:
        """Any input side of at least :func:`min_input_size`; probabilities with ``use_sigmoid``, else unbounded."""
        k = int(params.get("kernel_size", 4))
        n_layers = int(params.get("n_layers", 5))
        return DiscriminatorContract(
            min_size=min_input_size(n_layers, k, math.ceil((k - 1) / 2)),
            scores="probabilities" if params.get("use_sigmoid") else "unbounded",
        )

    def forward(self, x: Tensor) -> Tensor:
        """Score a batch: ``N x C x H x W`` in [0, 1] -> ``N x 1 x h x w``."""
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"discriminator 'patchgan_nonorm' takes N x {self.in_channels} x H x W images, got {got}.")
        return self.model(x * 2.0 - 1.0)
