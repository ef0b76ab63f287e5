"""Pixel content losses between the source and the output: ``mse`` and ``l1``.

Content losses take ``(source, output)`` image batches ``N x C x H x W`` and return a scalar
(``forward``) or one value per image (``per_image``), so they can serve as a training loss or as an RL penalty.
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo.errors import InputError
from zoo.registry import register

__all__ = ["L1", "MSE", "check_pair"]


def check_pair(who: str, source: Tensor, output: Tensor) -> None:
    """Raise :class:`InputError` unless ``source`` and ``output`` are same-shape ``N x C x H x W`` tensors."""
    for label, t in (("source", source), ("output", output)):
        if not isinstance(t, Tensor) or t.ndim != 4:
            got = f"shape {tuple(t.shape)}" if isinstance(t, Tensor) else type(t).__name__
            raise InputError(f"{who}: {label} must be an N x C x H x W image tensor, got {got}.")
    if source.shape != output.shape:
        raise InputError(
            f"{who}: source and output must have the same shape, got {tuple(source.shape)} and {tuple(output.shape)}."
        )


class _PixelLoss(nn.Module):
    is_adversarial = False
    name = ""

    def _diff(self, d: Tensor) -> Tensor:
        raise NotImplementedError

    def per_image(self, source: Tensor, output: Tensor) -> Tensor:
        """One value per image, ``(N,)``: the mean over channels and pixels."""
        check_pair(f"loss {self.name!r}", source, output)
        return self._diff(output.float() - source.float()).flatten(1).mean(dim=1)

    def forward(self, source: Tensor, output: Tensor) -> Tensor:
        """Scalar: the mean of :meth:`per_image` (all images have the same size)."""
        return self.per_image(source, output).mean()


@register("loss", "mse", tags=("content",))
class MSE(_PixelLoss):
    """Mean squared error between source and output (the RL-editing reward's penalty, alpha * MSE).

    Shape:
        source, output: ``N x C x H x W``, any range (the zoo's images are in [0, 1]).
    """

    name = "mse"

    def _diff(self, d: Tensor) -> Tensor:
        return d * d


@register("loss", "l1", tags=("content",))
class L1(_PixelLoss):
    """Mean absolute error between source and output.

    Shape:
        source, output: ``N x C x H x W``, any range.
    """

    name = "l1"

    def _diff(self, d: Tensor) -> Tensor:
        return d.abs()
