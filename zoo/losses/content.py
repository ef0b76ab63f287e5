"""Content losses between source and output: ``mse``, ``l1``, ``anchor_mse`` and ``self_feature_preserving``.

Content losses take ``(source, output)`` image batches ``N x C x H x W`` and return a scalar
(``forward``) or one value per image (``per_image``), so they can serve as a training loss or as an RL penalty.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.contracts import ContentLoss, ContentLossContract
from zoo.errors import InputError, suggest
from zoo.registry import register

__all__ = ["L1", "MSE", "AnchorMSE", "SelfFeaturePreserving", "check_pair"]


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


class _PixelLoss(ContentLoss):
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


@register("loss", "anchor_mse", tags=("content",))
class AnchorMSE(ContentLoss):
    """Mean squared error between the output and a training-free enhancement of the source.

    ``mse`` keeps an edit close to the dark source, which holds a learner back from the large, local changes that
    lower NIQE. This term keeps it close to what a classical operator makes of the source instead (by default
    CLAHE of the HSV value at clip limit 6, the best fixed edit on NIQE measured in docs/editing.md), so the
    adversarial terms adjust that enhancement per photo rather than start from nothing.

    Args:
        anchor: a registered training-free generator block (tag ``baseline``: ``clahe``, ``gamma``,
            ``histogram_equalization``), applied to the source without gradients.

    Shape:
        source, output: ``N x 3 x H x W`` in [0, 1] -> ``(N,)`` (:meth:`per_image`).

    Example:
        >>> loss = AnchorMSE()
        >>> x = torch.rand(2, 3, 32, 32) * 0.2
        >>> bool(loss(x, loss.target(x)) == 0), bool(loss(x, x) > 0)
        (True, True)
    """

    def __init__(
        self,
        anchor: str | dict[str, Any] = {"name": "clahe", "clip_limit": 6.0, "channel": "value"},  # noqa: B006
    ) -> None:
        super().__init__()
        from zoo.contracts import contract_of
        from zoo.registry import create

        block = dict(anchor) if isinstance(anchor, Mapping) else {"name": anchor}
        if contract_of("generator", block).learning != "none":
            raise InputError(
                f"loss 'anchor_mse': anchor {block.get('name')!r} learns; the anchor must be a training-free "
                "generator (clahe, gamma or histogram_equalization)."
            )
        self.anchor = create("generator", block, where="loss 'anchor_mse': anchor")
        self.anchor_block = block

    def target(self, source: Tensor) -> Tensor:
        """The anchor's enhancement of ``source`` (no gradient): where this loss is 0."""
        with torch.no_grad():
            return self.anchor(source.detach().float().clamp(0, 1))["image"]

    def per_image(self, source: Tensor, output: Tensor) -> Tensor:
        """One value per image, ``(N,)``: the mean over channels and pixels of ``(output - anchor(source))^2``."""
        check_pair("loss 'anchor_mse'", source, output)
        d = output.float() - self.target(source)
        return (d * d).flatten(1).mean(dim=1)


# ----------------------------------------------------------------------------------------------- feature loss

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_log = logging.getLogger("zoo.losses")


class _StopForward(Exception):
    """Raised by a forward hook to stop the backbone once the wanted layer has run."""


def _hf_cached_weights(hf_hub_id: str | None) -> str | None:
    """Path of a cached weights file of ``hf_hub_id`` in the Hugging Face cache, without any network access."""
    if not hf_hub_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repo = hf_hub_id.split("@")[0]
    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


@register("loss", "self_feature_preserving", paper="Jiang et al., IEEE TIP 2021", tags=("content", "enlightengan"))
class SelfFeaturePreserving(ContentLoss):
    """EnlightenGAN's self-feature-preserving loss: MSE between instance-normalised deep features of source and output.

    Features come from a frozen timm backbone (default VGG16 relu5_1 with the fourth max-pool skipped, i.e. 1/8
    resolution, as the official code). Any timm model and any of its module paths can be swapped in. The trainer
    adds the mean of this loss over the local discriminator's patches to the whole-image value (official
    ``patch_vgg``) when the recipe asks for it.

    Args:
        pretrained: load pretrained backbone weights: from ``weights`` if given, else from the Hugging Face cache
            (never downloaded here). When neither exists, :meth:`check_ready` (called by trainers before the
            first step) and every use of the loss raise a ``TrainingError`` saying how to provide them.
            ``false`` gives random features (tests): allowed, and logged as a warning.
        backbone: timm model name.
        layer: module path inside the timm model whose output are the features (``features.25`` = relu5_1).
        skip: module paths replaced by identity (``features.23`` = the fourth max-pool).
        preprocess: ``imagenet`` (RGB, ImageNet mean/std: timm's VGG16 weights), ``caffe`` (BGR 0-255: the
            official code with its Caffe-converted VGG16), ``caffe_mean`` (BGR 0-255 minus the Caffe mean) or ``none``.
        weights: a local weights file (``.safetensors``, ``.pth``, ``.bin``) for the backbone.
        instance_norm: instance-normalise the features before the distance (official: true).

    Shape:
        source, output: ``N x 3 x H x W`` in [0, 1]; ``forward`` -> scalar, ``per_image`` -> ``(N,)``.
    """

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> ContentLossContract:
        """Per-image values; needs pretrained backbone weights when ``pretrained`` is true."""
        return ContentLossContract(per_image=True, needs_pretrained=bool(params.get("pretrained")))

    def __init__(
        self,
        pretrained: bool,
        backbone: str = "vgg16",
        layer: str = "features.25",
        skip: tuple[str, ...] = ("features.23",),
        preprocess: Literal["imagenet", "caffe", "caffe_mean", "none"] = "imagenet",
        weights: str | None = None,
        instance_norm: bool = True,
    ) -> None:
        super().__init__()
        from zoo._compat import import_timm
        from zoo.errors import ParameterError

        self.missing_weights: str | None = None

        timm = import_timm()
        who = "loss 'self_feature_preserving'"
        if backbone not in timm.list_models():
            raise ParameterError(f"{who}: timm has no model {backbone!r}.{suggest(backbone, timm.list_models())}")
        file = None
        if weights:
            file = str(Path(weights).expanduser())
            if not os.path.isfile(file):
                raise ParameterError(f"{who}: weights file {file!r} does not exist.")
        elif pretrained:
            cfg = timm.models.get_pretrained_cfg(backbone)
            hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
            file = _hf_cached_weights(hub_id)
            if file is None:
                # not raised here, so that `zoo recipe check` can build the recipe; trainers call check_ready()
                # before the first step, and the loss refuses to run without its weights
                self.missing_weights = (
                    f"{who} needs pretrained weights for the timm backbone {backbone!r}"
                    + (f" (Hugging Face repo {hub_id})" if hub_id else "")
                    + ", but they are not in the Hugging Face cache and no local file was given; the zoo never "
                    "downloads during training. Provide them in one of these ways: (1) on a machine with network, "
                    f"run: python -c \"import timm; timm.create_model('{backbone}', pretrained=True)\" (fills the "
                    "cache; set HF_HOME to share it); (2) set `weights: /path/to/model.safetensors` in this loss "
                    "block of the recipe; (3) set `pretrained: false` (random features: not the paper's loss)."
                )
                _log.warning("%s", self.missing_weights)
        if not pretrained and not weights:
            _log.warning(
                "%s: pretrained=false: the %s backbone has RANDOM weights, so this is not the paper's "
                "feature-preserving loss. Use it for tests only.",
                who,
                backbone,
            )
        overlay = {"file": file} if file else None
        model = timm.create_model(backbone, pretrained=bool(file), pretrained_cfg_overlay=overlay, num_classes=0)
        names = dict(model.named_modules())
        for path in (layer, *skip):
            if path not in names:
                raise ParameterError(
                    f"{who}: timm model {backbone!r} has no module {path!r}.{suggest(path, names)} "
                    'List them with: python -c "import timm; print([n for n, _ in '
                    f"timm.create_model('{backbone}').named_modules()])\""
                )
        for path in skip:
            parent, _, child = path.rpartition(".")
            setattr(names[parent] if parent else model, child, nn.Identity())
        self.backbone = _truncate(model, layer)
        self.layer = layer
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.preprocess = preprocess
        self.use_instance_norm = instance_norm
        self.pretrained = pretrained or bool(weights)
        self.register_buffer("_mean", torch.tensor(_IMAGENET[0]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(_IMAGENET[1]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_caffe", torch.tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def check_ready(self) -> None:
        """Raise :class:`~zoo.errors.TrainingError` (saying how to get them) when pretrained weights are missing."""
        if self.missing_weights is not None:
            from zoo.errors import TrainingError

            raise TrainingError(self.missing_weights)

    def train(self, mode: bool = True) -> SelfFeaturePreserving:
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm/Dropout inside a swapped-in backbone stay in inference mode
        return self

    def _prepare(self, x: Tensor) -> Tensor:
        if self.preprocess == "imagenet":
            return (x - self._mean) / self._std
        if self.preprocess in ("caffe", "caffe_mean"):
            bgr = x.flip(1) * 255.0
            return bgr - self._caffe if self.preprocess == "caffe_mean" else bgr
        return x

    def features(self, x: Tensor) -> Tensor:
        """Backbone features of ``x`` (``N x 3 x H x W`` in [0, 1]), instance-normalised if configured."""
        feats = self.backbone(self._prepare(x))
        if self.use_instance_norm:
            feats = F.instance_norm(feats)
        return feats

    def per_image(self, source: Tensor, output: Tensor) -> Tensor:
        """Per-image feature distance ``(N,)``."""
        self.check_ready()
        check_pair("loss 'self_feature_preserving'", source, output)
        if source.shape[1] != 3:
            raise InputError(
                f"loss 'self_feature_preserving' takes RGB images N x 3 x H x W, got {source.shape[1]} channels."
            )
        both = self.features(torch.cat((source, output), dim=0))
        fs, fo = both.chunk(2, dim=0)
        return ((fo - fs.detach()) ** 2).flatten(1).mean(dim=1)

    def forward(self, source: Tensor, output: Tensor) -> Tensor:
        """Scalar loss: the mean of :meth:`per_image`."""
        return self.per_image(source, output).mean()


class _Hooked(nn.Module):
    """Runs a whole model and returns the output of one inner module (stops the forward there)."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        super().__init__()
        self.model = model
        self.layer = layer
        self._out: Tensor | None = None
        dict(model.named_modules())[layer].register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any, output: Tensor) -> None:
        self._out = output
        raise _StopForward

    def forward(self, x: Tensor) -> Tensor:
        try:
            self.model(x)
        except _StopForward:
            pass
        out, self._out = self._out, None
        if out is None:
            raise InputError(f"loss 'self_feature_preserving': the backbone never ran module {self.layer!r}.")
        return out


def _truncate(model: nn.Module, layer: str) -> nn.Module:
    """Keep only what runs up to ``layer`` when it sits in the model's leading Sequential (VGG), else hook it."""
    parent, _, child = layer.rpartition(".")
    first = next(iter(model.named_children()), (None, None))
    if parent and "." not in parent and first[0] == parent and isinstance(first[1], nn.Sequential) and child.isdigit():
        return nn.Sequential(*list(first[1].children())[: int(child) + 1])
    return _Hooked(model, layer)
