"""The RL editor as a generator: a policy looks at a 64 x 64 thumbnail, editing software applies its sliders.

``rl_editor`` is what RL training produces and what ``zoo enhance`` runs: the policy picks one of ``L`` levels
for each of the software's ``K`` sliders (argmax in eval mode, a sample in train mode), and the software applies
the chosen values to the photo at its full resolution. Because the edit is a handful of named slider values,
the output is interpretable and the same at any size.

:func:`area_thumbnail` is the thumbnail the policy sees: an exact area-average resize (OpenCV's ``INTER_AREA``
when shrinking), squashing the aspect ratio as the reference environment does, then rounded to 8 bits as the
reference's ``uint8`` images are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.contracts import GeneratorContract, PolicySliderGenerator
from zoo.errors import DataError, InputError, ParameterError, load_failure
from zoo.registry import create, register
from zoo.rl.common import get_action_and_value

PAPER = "Kosugi & Yamasaki, AAAI 2020"


def _area_1d(x: Tensor, n_out: int) -> Tensor:
    """Exact area average along the last dim (OpenCV ``INTER_AREA`` coverage).

    The prefix-sum function ``S`` of a piecewise-constant signal is piecewise linear, so the integral over a cell
    with fractional edges ``e`` is ``S(e1) - S(e0)`` with ``S(e) = S(floor e) + frac(e) x[floor e]``. ``S`` is only
    needed at the ``n_out + 1`` integer floors, i.e. from ``n_out`` segment sums: one reduction pass over the input.
    """
    n_in = x.shape[-1]
    edges = torch.arange(n_out + 1, dtype=torch.float64) * (n_in / n_out)
    k = edges.floor().long().clamp_(max=n_in - 1)  # the last edge (n_in) becomes S(n_in - 1) + 1 * x[n_in - 1]
    frac = (edges - k).to(device=x.device)
    ks = k.tolist()
    segs = torch.stack([x[..., a:b].sum(-1) for a, b in zip(ks[:-1], ks[1:], strict=True)], dim=-1).double()
    prefix = torch.cat([torch.zeros_like(segs[..., :1]), segs.cumsum(-1)], dim=-1)  # S at the integer floors
    at_edges = prefix + x[..., k.to(x.device)].double() * frac
    return ((at_edges[..., 1:] - at_edges[..., :-1]) * (n_out / n_in)).to(x.dtype)


def area_thumbnail(images: Tensor, size: int = 64, quantize: bool = True) -> Tensor:
    """Resize a batch to ``size x size`` by area averaging (the aspect ratio is squashed, as in the reference).

    Shrinking is OpenCV's ``INTER_AREA`` (fractional pixel coverage), computed from segment sums along the width
    and then the height (:func:`_area_1d`), so a 12-megapixel photo costs one reduction pass over its pixels.
    Enlarging (inputs smaller than ``size``) falls back to bilinear interpolation, which is what ``INTER_AREA``
    does then.

    Args:
        images: ``N x 3 x H x W`` float in [0, 1].
        size: output side.
        quantize: round to 8-bit levels (``round(255 x) / 255``), like the reference's ``uint8`` thumbnails.

    Returns:
        ``N x 3 x size x size`` in [0, 1], same dtype and device.
    """
    n, c, h, w = images.shape
    x = images
    if h < size or w < size:
        x = F.interpolate(x, size=(max(h, size), max(w, size)), mode="bilinear", align_corners=False)
        h, w = x.shape[-2:]
    if (h, w) != (size, size):
        x = _area_1d(_area_1d(x, size).transpose(-1, -2), size).transpose(-1, -2)
    if quantize:
        x = torch.round(x.clamp(0, 1) * 255.0) / 255.0
    return x.contiguous()


def quantize_8bit(images: Tensor) -> Tensor:
    """``round(255 x) / 255``: what an image saved as ``uint8`` and read back holds."""
    return torch.round(images.clamp(0, 1) * 255.0) / 255.0


def _check_images(x: Any, who: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise InputError(f"{who} takes RGB images N x 3 x H x W (float in [0, 1]), got {got}.")
    if not x.is_floating_point():
        raise InputError(f"{who} takes float images in [0, 1], got dtype {x.dtype}.")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise InputError(f"{who}: the images contain NaN or Inf.")


def _check_policy_block(policy: Any, software: str, k: int, levels: int, size: int) -> None:
    """K, L and the thumbnail size are set from the editor: a policy block that states others is a mistake."""
    if not isinstance(policy, dict):
        return
    for key, want in (("num_params", k), ("levels", levels), ("thumbnail_size", size)):
        if key in policy and policy[key] != want:
            raise ParameterError(
                f"generator 'rl_editor': policy.{key} is {policy[key]}, but the software {software!r} has K = {k} "
                f"sliders and levels is {levels} (thumbnail {size}): the policy must have {key} = {want}. Remove "
                f"policy.{key} (it is set from the software and levels) or make them agree."
            )


@register("generator", "rl_editor", paper=PAPER, tags=("rl_edit",))
class RLEditor(PolicySliderGenerator):
    """RL-controlled editing software as a generator: policy on a 64x64 thumbnail, sliders applied at full size.

    In eval mode the policy's BatchNorm uses its running statistics and the most likely level of each slider is
    taken; in train mode the levels are sampled. The software then applies the levels' slider values
    (``p = (a - (L-1)/2) / ((L-1)/2)`` mapped into each range) to the full-resolution input.

    Args:
        policy: a policy block (``{name: kosugi_actor_critic, ...}``) or name; its K and L are set from the
            software and ``levels`` (a block that states different ones is an error).
        software: the editing software block or name (``lightroom_basic``: K = 12).
        levels: L, the number of discrete levels per slider (33 in the paper).
        thumbnail_size: side of the thumbnail the policy sees.
        quantize_thumbnail: round the thumbnail to 8 bits, as the reference's ``uint8`` pipeline does.
        weights: optional weights: the released Chainer ``.npz`` of the policy (``generator_weights_for_demo.npz``)
            or a ``.pt`` state dict of this module.

    Returns (forward):
        ``{"image": N x 3 x H x W, "params": N x K slider values, "actions": N x K levels,
        "logits": N x K x L, "value": N, "log_prob": N, "thumbnail": N x 3 x S x S}``.

    Example:
        >>> import torch
        >>> editor = RLEditor().eval()
        >>> out = editor(torch.rand(1, 3, 120, 160))
        >>> out["image"].shape, out["params"].shape
        (torch.Size([1, 3, 120, 160]), torch.Size([1, 12]))
    """

    @classmethod
    def contract(cls, params: dict[str, Any]) -> GeneratorContract:
        """A policy over ``levels`` discrete levels of each of the software's K sliders, on a thumbnail."""
        from zoo.editing.software import software_slots

        software = params.get("software", "lightroom_basic")
        name = software if isinstance(software, str) else str(software.get("name"))
        k = len(software_slots(software))
        levels, size = int(params.get("levels", 33)), int(params.get("thumbnail_size", 64))
        _check_policy_block(params.get("policy"), name, k, levels, size)
        return GeneratorContract("policy", software=name, num_params=k, levels=levels, thumbnail_size=size)

    def __init__(
        self,
        policy: str | dict[str, Any] = "kosugi_actor_critic",
        software: str | dict[str, Any] = "lightroom_basic",
        levels: int = 33,
        thumbnail_size: int = 64,
        quantize_thumbnail: bool = True,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        self.software = create("software", software, where="generator 'rl_editor': software")
        k = int(self.software.K)
        _check_policy_block(policy, self.software.software_name, k, levels, thumbnail_size)
        if isinstance(policy, dict):
            policy = {**policy, "num_params": k, "levels": levels, "thumbnail_size": thumbnail_size}
        elif isinstance(policy, str):
            policy = {"name": policy, "num_params": k, "levels": levels, "thumbnail_size": thumbnail_size}
        self.policy = create("policy", policy, where="generator 'rl_editor': policy")
        got_k, got_l = getattr(self.policy, "num_params", k), getattr(self.policy, "levels", levels)
        if (got_k, got_l) != (k, levels):
            raise ParameterError(
                f"generator 'rl_editor': the policy outputs K={got_k} x L={got_l}, but the software has K={k} "
                f"sliders and levels={levels}."
            )
        self.levels = int(levels)
        self.thumbnail_size = int(thumbnail_size)
        self.quantize_thumbnail = bool(quantize_thumbnail)
        if weights is not None:
            self.load_weights(weights)

    @property
    def names(self) -> list[str]:
        """The software's slider names, in parameter order."""
        return list(self.software.names)

    def load_weights(self, path: str | Path) -> None:
        """Load the released Chainer ``.npz`` into the policy, or a ``.pt`` state dict of this module."""
        path = Path(path).expanduser()
        if path.is_dir():
            raise DataError(f"generator 'rl_editor': weights {path} is a folder; give the weights file (.npz or .pt).")
        if not path.is_file():
            raise DataError(f"generator 'rl_editor': weights file {path} does not exist.")
        if path.suffix == ".npz":
            loader = getattr(self.policy, "load_weights", None)
            if loader is None:
                raise DataError(f"generator 'rl_editor': the policy {type(self.policy).__name__} cannot load {path}.")
            loader(path)
            return
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickles, truncated or foreign files
            raise DataError(f"generator 'rl_editor': cannot load weights {path}: {load_failure(exc)}.") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise DataError(
                f"generator 'rl_editor': {path} holds a {type(state).__name__}, not a state dict of this editor "
                "(or the released Chainer .npz)."
            )
        try:
            self.load_state_dict(state)
        except (RuntimeError, TypeError, KeyError, ValueError, AttributeError) as exc:
            raise DataError(f"generator 'rl_editor': {path} is not a state dict of this editor ({exc}).") from None

    def thumbnail(self, images: Tensor) -> Tensor:
        """The ``64 x 64`` thumbnail the policy sees (area resize, 8-bit rounding)."""
        return area_thumbnail(images, self.thumbnail_size, self.quantize_thumbnail)

    def decide(self, images: Tensor, deterministic: bool | None = None) -> dict[str, Tensor]:
        """Run the policy on the thumbnails of ``images`` and pick levels (no editing): the acting step.

        The ``rl`` trainer acts through this method, so training sees exactly the thumbnail (size, 8-bit
        rounding) and the level mapping that inference uses.

        Args:
            images: ``N x 3 x H x W`` in [0, 1], any size.
            deterministic: argmax (default in eval mode) or sampling (default in train mode).

        Returns:
            ``{"params", "actions", "log_prob", "value", "logits", "thumbnail"}``.
        """
        _check_images(images, "generator 'rl_editor'")
        thumbnail = self.thumbnail(images)
        if deterministic is None:
            deterministic = not self.training
        actions, log_prob, _, value, logits = get_action_and_value(self.policy, thumbnail, None, deterministic)
        params = self.software.levels_to_params(actions, self.levels).to(images.dtype)
        return {
            "params": params,
            "actions": actions,
            "log_prob": log_prob,
            "value": value,
            "logits": logits,
            "thumbnail": thumbnail,
        }

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Edit photos at their own resolution.

        Args:
            images: ``N x 3 x H x W`` float in [0, 1], any size.

        Returns:
            ``{"image", "params", "actions", "logits", "value"}`` (see the class docstring).
        """
        out = self.decide(images)
        out["image"] = self.software.apply(images, out["params"])
        return out
