"""A local-patch wrapper that turns any discriminator into EnlightenGAN's local discriminator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from zoo.contracts import DiscriminatorContract, PatchDiscriminator, block_params, contract_of
from zoo.errors import InputError, ParameterError
from zoo.registry import create, register

__all__ = ["LocalPatches", "crop_windows"]


def crop_windows(images: Tensor, windows: Tensor, size: int) -> Tensor:
    """Cut ``size x size`` windows from a batch.

    Args:
        images: ``N x C x H x W``.
        windows: ``P x N x 2`` integer (top, left) corners, one per patch and image.
        size: window side.

    Returns:
        ``(P * N) x C x size x size``, patch-major (all images' first patch, then the second, ...).
    """
    n = images.shape[0]
    if windows.ndim != 3 or windows.shape[1] != n or windows.shape[2] != 2:
        raise InputError(
            f"local patches: windows must be P x N x 2 corners for a batch of {n}, got shape {tuple(windows.shape)}."
        )
    p = windows.shape[0]
    windows = windows.to(images.device)
    # one offset for the whole batch (the official sampling) is a plain slice per patch
    if bool((windows == windows[:, :1]).all()):
        corners = windows[:, 0].tolist()
        return torch.cat([images[:, :, top : top + size, left : left + size] for top, left in corners], dim=0)
    ar = torch.arange(size, device=images.device)
    rows = windows[..., 0, None] + ar  # P x N x size
    cols = windows[..., 1, None] + ar
    idx_n = torch.arange(n, device=images.device).view(1, n, 1, 1).expand(p, n, size, size)
    patches = images[idx_n, :, rows[..., :, None], cols[..., None, :]]  # P x N x size x size x C
    return patches.permute(0, 1, 4, 2, 3).reshape(p * n, images.shape[1], size, size)


DEFAULT_INNER: dict[str, Any] = {"name": "patchgan_nonorm", "n_layers": 4}


def inner_contract(block: Mapping[str, Any] | str | None, patch_size: int) -> DiscriminatorContract:
    """The contract of a local-patch wrapper's inner discriminator, checked against ``patch_size`` (nothing built).

    Raises:
        ParameterError: the inner network does not take ``patch_size x patch_size`` images (the sentence says what
            to set).
    """
    block = DEFAULT_INNER if block is None else block
    if not isinstance(block, (str, Mapping)):  # an already-built module: nothing to read without running it
        return DiscriminatorContract()
    inner = contract_of("discriminator", block)
    if inner.accepts((patch_size, patch_size)):
        return inner
    name = block if isinstance(block, str) else str(block.get("name"))
    if inner.input_size is not None:
        need = inner.input_size[0]
        fix = f"set patch_size: {need}"
        _, params = block_params("discriminator", block)
        if "image_size" in params and inner.input_size[0] == inner.input_size[1]:
            fix += f" or the inner image_size: {patch_size}"
    else:
        need = inner.min_size
        fix = f"set patch_size: {need} or more"
    raise ParameterError(
        f"discriminator 'local_patches': its inner {name} takes {inner.describe_sizes()} but patch_size is "
        f"{patch_size}; {fix}."
    )


@register("discriminator", "local_patches", paper="Jiang et al., IEEE TIP 2021", tags=("enlightengan",))
class LocalPatches(PatchDiscriminator):
    """Scores ``n_patches`` random ``patch_size`` crops with an inner discriminator (EnlightenGAN's local D).

    The same windows must be cut from the fake, the real and the source images: draw them once with
    :meth:`sample_windows` and pass them to every call (and to :meth:`crop` for the feature-preserving loss).
    Without ``windows`` a call draws its own. Official: 6 patches of 32 px, one offset per batch.

    Args:
        discriminator: the inner discriminator block (default ``{name: patchgan_nonorm, n_layers: 4}``).
        n_patches: patches per image.
        patch_size: side of each square patch in pixels.
        per_image: draw an offset per image instead of one per batch (official: per batch).

    Shape:
        input ``N x C x H x W`` (H, W >= patch_size); output ``N x 1 x (n_patches * h) x w``: the inner score
        maps of an image's patches stacked along the height, so per-image means average over all patches.
    """

    def __init__(
        self,
        discriminator: dict[str, Any] | str | None = None,
        n_patches: int = 6,
        patch_size: int = 32,
        per_image: bool = False,
    ) -> None:
        super().__init__()
        if n_patches < 1 or patch_size < 1:
            raise InputError(
                f"discriminator 'local_patches': n_patches and patch_size must be >= 1, got {n_patches}, {patch_size}."
            )
        block = discriminator if discriminator is not None else DEFAULT_INNER
        inner_contract(block, patch_size)  # refuse an inner network that cannot take the patches, before building
        self.inner = create("discriminator", block, where="local_patches.discriminator")
        self.n_patches = n_patches
        self.patch_size = patch_size
        self.per_image = per_image

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> DiscriminatorContract:
        """Images of at least ``patch_size``; the scores are the inner discriminator's (checked to take the patches).

        Raises:
            ParameterError: the inner discriminator does not accept ``patch_size x patch_size`` images.
        """
        patch = int(params.get("patch_size", 32))
        inner = inner_contract(params.get("discriminator"), patch)
        return DiscriminatorContract(min_size=patch, scores=inner.scores, patch_size=patch)

    def sample_windows(
        self,
        n: int,
        height: int,
        width: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Random corners ``n_patches x n x 2`` (top, left) for a batch of ``n`` images of ``height x width``."""
        p = self.patch_size
        if height < p or width < p:
            raise InputError(
                f"discriminator 'local_patches': images of {height} x {width} px are smaller than patch_size={p}."
            )
        count = n if self.per_image else 1
        top = torch.randint(0, height - p + 1, (self.n_patches, count), generator=generator)
        left = torch.randint(0, width - p + 1, (self.n_patches, count), generator=generator)
        windows = torch.stack((top, left), dim=-1).expand(self.n_patches, n, 2)
        return windows.to(device) if device is not None else windows

    def crop(self, images: Tensor, windows: Tensor) -> Tensor:
        """The patches of ``images`` at ``windows``: ``(n_patches * N) x C x p x p``."""
        return crop_windows(images, windows, self.patch_size)

    def forward(self, x: Tensor, windows: Tensor | None = None) -> Tensor:
        """Score the patches of ``x`` (see the class docstring for shapes)."""
        if not isinstance(x, Tensor) or x.ndim != 4:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"discriminator 'local_patches' takes N x C x H x W images, got {got}.")
        n = x.shape[0]
        if windows is None:
            windows = self.sample_windows(n, x.shape[-2], x.shape[-1], x.device)
        scores = self.inner(self.crop(x, windows))
        scores = scores.reshape(windows.shape[0], n, *scores.shape[1:])  # P x N x 1 x h x w (or P x N x 1)
        if scores.ndim == 3:
            return scores.permute(1, 0, 2).reshape(n, 1, -1)
        p, _, c, h, w = scores.shape
        return scores.permute(1, 2, 0, 3, 4).reshape(n, c, p * h, w)
