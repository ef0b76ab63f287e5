"""Small convolution blocks shared by the generators."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ConvActNorm"]


class ConvActNorm(nn.Module):
    """Conv -> LeakyReLU -> optional BatchNorm, the order of EnlightenGAN's U-Net (normalisation after the activation).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel; padding keeps the size ("same" for odd kernels).
        negative_slope: LeakyReLU slope.
        norm: add a BatchNorm2d after the activation.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, negative_slope: float = 0.2, norm: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.norm = nn.BatchNorm2d(out_channels) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.conv(x))
        return self.norm(x) if self.norm is not None else x
