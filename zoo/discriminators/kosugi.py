"""The WGAN-GP critic of RL-controlled editing (Kosugi & Yamasaki, AAAI 2020)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from zoo.contracts import Discriminator, DiscriminatorContract
from zoo.errors import InputError, ParameterError
from zoo.registry import register


@register("discriminator", "kosugi_critic", paper="Kosugi & Yamasaki, AAAI 2020", tags=("rl_edit",))
class KosugiCritic(Discriminator):
    """WGAN-GP critic on 64x64 thumbnails: six strided convs with LeakyReLU 0.2, no normalisation, one raw score.

    Conv 3->16 k3 s1 p1, 16->32 k3 s2 p1, then 32->48, 48->48, 48->64, 64->64 (k2 s2 p1), each followed by
    LeakyReLU(0.2); the 64 x 3 x 3 map is flattened into Linear(576 -> 1) with no sigmoid (a Wasserstein critic).
    No normalisation layer, so the per-sample gradient penalty stays per sample. 49,921 parameters.

    Args:
        image_size: side of the square input (64 in the paper; fixes the 3 x 3 map feeding the Linear).
        negative_slope: LeakyReLU slope.

    Shape:
        input ``N x 3 x 64 x 64`` float in [0, 1]; output ``N x 1`` scores (unbounded).
    """

    def __init__(self, image_size: int = 64, negative_slope: float = 0.2) -> None:
        super().__init__()
        chans = (3, 16, 32, 48, 48, 64, 64)
        kernels = (3, 3, 2, 2, 2, 2)
        strides = (1, 2, 2, 2, 2, 2)
        layers: list[nn.Module] = []
        side = image_size
        for i, (k, s) in enumerate(zip(kernels, strides, strict=True)):
            layers += [nn.Conv2d(chans[i], chans[i + 1], k, s, 1), nn.LeakyReLU(negative_slope, inplace=True)]
            side = (side + 2 - k) // s + 1
        if side < 1:
            raise ParameterError(f"discriminator 'kosugi_critic': image_size {image_size} is too small.")
        self.image_size = image_size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(64 * side * side, 1)

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> DiscriminatorContract:
        """Only ``image_size x image_size`` inputs (the Linear head fixes the size); unbounded scores."""
        size = int(params.get("image_size", 64))
        return DiscriminatorContract(input_size=(size, size), min_size=size, scores="unbounded")

    def forward(self, x: Tensor) -> Tensor:
        """Score a batch of thumbnails.

        Args:
            x: ``N x 3 x S x S`` RGB in [0, 1], S = ``image_size``.

        Returns:
            ``N x 1`` critic scores (higher = more like the target domain).
        """
        s = self.image_size
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (s, s):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(
                f"discriminator 'kosugi_critic' takes RGB thumbnails N x 3 x {s} x {s} in [0, 1], got {got}."
            )
        return self.head(self.features(x).flatten(1))
