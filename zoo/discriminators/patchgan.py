"""EnlightenGAN's no-norm PatchGAN discriminator (official ``NoNormDiscriminator``)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from zoo.errors import InputError
from zoo.registry import register

__all__ = ["PatchGANNoNorm", "patch_map_size"]


def patch_map_size(size: int, n_layers: int, kernel_size: int = 4, padding: int = 2) -> int:
    """Side of the score map for an input side ``size`` (``n_layers`` stride-2 convs, then two stride-1 convs)."""
    for _ in range(n_layers):
        size = (size + 2 * padding - kernel_size) // 2 + 1
    for _ in range(2):
        size = size + 2 * padding - kernel_size + 1
    return size


@register("discriminator", "patchgan_nonorm", paper="Jiang et al., IEEE TIP 2021", tags=("enlightengan",))
class PatchGANNoNorm(nn.Module):
    """No-norm PatchGAN of the official EnlightenGAN code: 4x4 convs, LeakyReLU 0.2, no normalisation, no sigmoid.

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

    Shape:
        input ``N x C x H x W`` (the zoo's [0, 1] images are mapped to [-1, 1] inside, as the official code saw
        them); output ``N x 1 x h x w`` raw scores, ``h = patch_map_size(H, n_layers)``.
    """

    def __init__(
        self, in_channels: int = 3, ndf: int = 64, n_layers: int = 5, kernel_size: int = 4, negative_slope: float = 0.2
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
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Score a batch: ``N x C x H x W`` in [0, 1] -> ``N x 1 x h x w``."""
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"discriminator 'patchgan_nonorm' takes N x {self.in_channels} x H x W images, got {got}.")
        return self.model(x * 2.0 - 1.0)
