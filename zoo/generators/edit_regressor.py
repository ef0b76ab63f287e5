"""``edit_regressor``: a CNN reads a thumbnail and regresses continuous slider values; the software applies them.

The differentiable sibling of ``rl_editor``: the same editing softwares (``lightroom_basic``, ``exposure_filters``,
any ``editor_chain``), the same 64 x 64 thumbnail, the same named, interpretable sliders applied to the photo at its
full resolution, but the sliders are continuous and learnt by backpropagation through the differentiable
operators, so the ``gan`` trainer trains it against any discriminators and losses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.contracts import GeneratorContract, SliderGenerator
from zoo.errors import DataError, InputError, ParameterError, load_failure, suggest
from zoo.registry import create, register, split_block

__all__ = ["EditRegressor", "KosugiTrunk"]

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class KosugiTrunk(nn.Sequential):
    """The convolution stack of Kosugi & Yamasaki's actor-critic (``zoo.rl.networks.KosugiActorCritic``).

    Conv 3->16 k3 s1 p1 (no BatchNorm); 16->32 k3 s2 p1; 32->48, 48->48, 48->64, 64->``width`` k2 s2 p1, each
    followed by BatchNorm (Chainer's epsilon 2e-5) and ReLU. A 64 x 64 thumbnail gives a ``width x 3 x 3`` map.

    Args:
        thumbnail_size: side of the square input.
        width: channels of the last conv (the policy uses L + 12 = 45; the regressor 64).

    Shape:
        ``N x 3 x S x S`` -> ``N x (width * s * s)`` (flattened map; ``s = 3`` for ``S = 64``).
    """

    def __init__(self, thumbnail_size: int = 64, width: int = 64) -> None:
        chans = (3, 16, 32, 48, 48, 64, width)
        kernels = (3, 3, 2, 2, 2, 2)
        strides = (1, 2, 2, 2, 2, 2)
        layers: list[nn.Module] = []
        side = thumbnail_size
        for i, (k, s) in enumerate(zip(kernels, strides, strict=True)):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], k, s, 1))
            if i > 0:
                layers.append(nn.BatchNorm2d(chans[i + 1], eps=2e-5))
            layers.append(nn.ReLU(inplace=True))
            side = (side + 2 - k) // s + 1
        super().__init__(*layers, nn.Flatten(1))
        self.num_features = width * side * side


def _timm_backbone(name: str, pretrained: bool, who: str) -> tuple[nn.Module, int, tuple, tuple]:
    """A timm model without its classifier (``num_classes=0``): ``(model, features, mean, std)``."""
    from zoo._compat import import_timm

    timm = import_timm()
    if not timm.is_model(name):
        raise ParameterError(
            f"{who}: backbone {name!r} is neither 'kosugi' nor a timm model.{suggest(name, timm.list_models())}"
        )
    file = None
    if pretrained:  # never downloads: the weights must already be in the Hugging Face cache
        from zoo.losses.content import _hf_cached_weights

        cfg = timm.models.get_pretrained_cfg(name)
        file = _hf_cached_weights(getattr(cfg, "hf_hub_id", None) if cfg is not None else None)
        if file is None:
            raise ParameterError(
                f"{who}: pretrained weights of the timm backbone {name!r} are not in the Hugging Face cache and the "
                f"zoo never downloads them; run python -c \"import timm; timm.create_model('{name}', "
                'pretrained=True)" on a machine with network, or set pretrained: false.'
            )
    overlay = {"file": file} if file else None
    model = timm.create_model(name, pretrained=bool(file), pretrained_cfg_overlay=overlay, num_classes=0, in_chans=3)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean, std = tuple(cfg.get("mean", _IMAGENET[0])), tuple(cfg.get("std", _IMAGENET[1]))
    return model, int(model.num_features), mean, std


@register(
    "generator",
    "edit_regressor",
    paper="Kosugi & Yamasaki, AAAI 2020 (editing software); regressed by backpropagation",
    tags=("rl_edit", "sliders"),
)
class EditRegressor(SliderGenerator):
    """Continuous slider regressor: a CNN on a 64 x 64 thumbnail predicts a software's sliders, applied at full size.

    The backbone reads the area-resized thumbnail (not rounded to 8 bits, so the whole path is differentiable); a
    two-layer head gives ``u = tanh(.)`` in [-1, 1] per slider, and each slider's declared range maps it to a value
    (``ParamSpec.from_unit``: ``u = 0`` is the neutral value, ``-1`` and ``1`` the range's ends, in log space for
    log-scaled sliders). The head's last layer starts at zero, so an untrained regressor is the identity edit. The
    software applies the values to the input at its own resolution; gradients flow through the operators into the
    network (``gan`` trainer).

    Args:
        software: the editing software block or name (``lightroom_basic``: K = 12; ``exposure_filters``: 38;
            ``{name: editor_chain, operators: [...]}``).
        backbone: ``"kosugi"`` (the RL method's conv trunk, 3 x 3 map flattened) or any timm model name (random
            initialisation unless ``pretrained``).
        pretrained: load a timm backbone's pretrained weights from the Hugging Face cache (never downloaded).
        thumbnail_size: side of the square thumbnail the network sees.
        hidden: width of the head's hidden layer.
        start: slider values the untrained regressor proposes (``{name: value}``; the others neutral), e.g. a
            preset to learn from instead of the identity edit. Set through the head's last bias; values at a
            range's end start at 96 % of the way there, where ``tanh`` still has a gradient.
        weights: optional ``.pt`` file: a state dict of this module or a zoo checkpoint of it.

    Returns (forward):
        ``{"image": N x 3 x H x W in [0, 1], "params": N x K slider values}``.

    Shape:
        input ``N x 3 x H x W`` float RGB in [0, 1], any size; :meth:`propose` ``-> N x K``; :meth:`regress`
        takes the ``N x 3 x S x S`` thumbnail.

    Example:
        >>> import torch
        >>> g = EditRegressor(software={"name": "editor_chain", "operators": ["exposure", "saturation"]})
        >>> out = g.eval()(torch.rand(2, 3, 48, 80))
        >>> out["image"].shape, out["params"].shape
        (torch.Size([2, 3, 48, 80]), torch.Size([2, 2]))
        >>> bool((out["params"] == g.software.neutral(2)).all())  # untrained: the identity edit
        True
    """

    def __init__(
        self,
        software: str | dict[str, Any] = "lightroom_basic",
        backbone: str = "kosugi",
        pretrained: bool = False,
        thumbnail_size: int = 64,
        hidden: int = 128,
        start: dict[str, float] | None = None,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        who = "generator 'edit_regressor'"
        if thumbnail_size < 8:
            raise ParameterError(f"{who}: thumbnail_size must be at least 8 pixels, got {thumbnail_size}.")
        if hidden < 1:
            raise ParameterError(f"{who}: hidden must be >= 1, got {hidden}.")
        self.software = create("software", software, where=f"{who}: software")
        self.thumbnail_size = int(thumbnail_size)
        self.backbone_name = backbone
        if backbone == "kosugi":
            if pretrained:
                raise ParameterError(f"{who}: the 'kosugi' backbone has no pretrained weights; set pretrained: false.")
            self.backbone = KosugiTrunk(self.thumbnail_size)
            features = self.backbone.num_features
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # the RL method's trunk reads [0, 1] thumbnails as they are
        else:
            self.backbone, features, mean, std = _timm_backbone(backbone, pretrained, who)
        self.register_buffer("_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        k = int(self.software.K)
        self.head = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, k))
        nn.init.zeros_(self.head[-1].weight)  # u = tanh(0) = 0: every slider at its neutral value
        nn.init.zeros_(self.head[-1].bias)
        self.start = dict(start or {})
        if self.start:
            values = self.software.from_dict(self.start)  # unknown names and out-of-range values: a sentence
            u = torch.stack([spec.to_unit(values[i : i + 1]) for i, spec in enumerate(self.software.specs)])
            with torch.no_grad():
                self.head[-1].bias.copy_(torch.atanh(u.view(-1).clamp(-0.96, 0.96)))
        if weights:
            self.load_weights(weights)

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> GeneratorContract:
        """Differentiable; drives ``software`` (K read from its operators, nothing built) from a thumbnail."""
        from zoo.editing.software import software_slots

        block = params.get("software", "lightroom_basic")
        name, _ = split_block(block) if isinstance(block, (str, Mapping)) else (block.software_name, {})
        return GeneratorContract(
            "backprop",
            software=name,
            num_params=len(software_slots(block)),
            thumbnail_size=int(params.get("thumbnail_size", 64)),
        )

    @property
    def names(self) -> list[str]:
        """The software's slider names, in parameter order."""
        return list(self.software.names)

    def thumbnail(self, images: Tensor) -> Tensor:
        """The ``S x S`` area-resized thumbnail the network sees (not quantised: differentiable)."""
        from zoo.rl.editor import area_thumbnail

        return area_thumbnail(images, self.thumbnail_size, quantize=False)

    def regress(self, thumbnails: Tensor) -> Tensor:
        """Slider values ``N x K`` from thumbnails ``N x 3 x S x S`` in [0, 1] (the network ONNX export keeps)."""
        x = (thumbnails - self._mean.to(thumbnails)) / self._std.to(thumbnails)
        u = torch.tanh(self.head(self.backbone(x)))
        return torch.stack([spec.from_unit(u[:, i]) for i, spec in enumerate(self.software.specs)], dim=1)

    def propose(self, images: Tensor) -> Tensor:
        """Slider values ``N x K`` (within each slider's declared range) for images ``N x 3 x H x W`` in [0, 1]."""
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise InputError(f"generator 'edit_regressor' takes RGB images N x 3 x H x W in [0, 1], got {got}.")
        if not images.is_floating_point():
            raise InputError(f"generator 'edit_regressor' takes float images in [0, 1], got dtype {images.dtype}.")
        return self.regress(self.thumbnail(images)).to(images.dtype)

    def load_weights(self, path: str | os.PathLike[str]) -> None:
        """Load a ``.pt`` state dict of this module, or the generator of a zoo checkpoint.

        Raises:
            DataError: the file is missing or unreadable, or its tensors do not fit this network.
        """
        p = Path(path).expanduser()
        if p.is_dir():
            raise DataError(f"generator 'edit_regressor': weights {p} is a folder; give the weights file.")
        if not p.is_file():
            raise DataError(f"generator 'edit_regressor': weights file {p} does not exist.")
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle, zip and truncation errors: say which file
            raise DataError(f"generator 'edit_regressor': cannot read {p}: {load_failure(exc)}.") from None
        if isinstance(state, Mapping) and state.get("format") == "enhance-zoo-checkpoint":
            from zoo.checkpoint_io import generator_state

            state = generator_state(state)
        try:
            self.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise DataError(
                f"generator 'edit_regressor': {p} does not fit this network (check software, backbone, "
                f"thumbnail_size and hidden): {str(exc).splitlines()[0]}"
            ) from None
