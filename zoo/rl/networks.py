"""Kosugi & Yamasaki's actor-critic network (the "SPIRAL"-style policy of their release) and its Chainer loader.

The network looks at a 64 x 64 thumbnail of the *unedited* photo and outputs, for each of the K sliders of the
editing software, logits over L discrete levels, plus a state value. Layer sizes, the 1-D convolutional policy
head and BatchNorm's epsilon (Chainer's 2e-5) follow the released model, so its weights load unchanged
(:func:`load_chainer_npz`) and reproduce the reference logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from zoo.contracts import Policy
from zoo.errors import DataError, InputError, ParameterError, load_failure
from zoo.registry import register

PAPER = "Kosugi & Yamasaki, AAAI 2020"
CHAINER_BN_EPS = 2e-5

# (conv, batchnorm) names of the Chainer model, in order; c1 has no BatchNorm.
_TRUNK = (("c1", None), ("c2", "bn1"), ("c3", "bn2"), ("c4", "bn3"), ("c5", "bn4"), ("c6", "bn5"))
_HEAD = (("dc1", "dbn1"), ("dc2", "dbn2"), ("dc3", "dbn3"), ("dc4", "dbn4"), ("dc5", "dbn5"), ("dc6", None))


def _conv_bn(conv: nn.Module, bn: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = [conv] + ([bn] if bn is not None else [])
    return nn.Sequential(*layers, nn.ReLU(inplace=True))


@register("policy", "kosugi_actor_critic", paper=PAPER, tags=("rl_edit",))
class KosugiActorCritic(Policy):
    """Actor-critic network of RL-controlled editing: 64x64 thumbnail -> K x L slider logits and a state value.

    Shared trunk (ReLU): Conv 3->16 k3 s1 p1; 16->32 k3 s2 p1 BN; 32->48, 48->48, 48->64, 64->(L+12) (k2 s2 p1, BN),
    giving ``(L+12) x 3 x 3``. The value head is a Linear on that flattened map; the policy head averages it to a
    1-D signal of length L+12 and runs six unpadded Conv1d (1->16->32->48->48->64->K, kernel 3), which shortens
    it to L. 70,601 parameters for K = 12, L = 33.

    Args:
        num_params: K, the number of sliders of the software the policy drives.
        levels: L, the number of discrete levels per slider (odd, so that the middle level is the neutral value).
        thumbnail_size: side of the square input the network expects (64 in the paper; fixes the 3 x 3 map).
        bn_eps: BatchNorm epsilon (Chainer's 2e-5, which the released weights were trained with).
        weights: optional path to a Chainer ``.npz`` of the released model (``generator_weights_for_demo.npz``).

    Shape:
        input ``N x 3 x 64 x 64`` float in [0, 1]; output ``(logits N x K x L, value N)``.
    """

    def __init__(
        self,
        num_params: int = 12,
        levels: int = 33,
        thumbnail_size: int = 64,
        bn_eps: float = CHAINER_BN_EPS,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        if num_params < 1:
            raise ParameterError(f"policy 'kosugi_actor_critic': num_params must be >= 1, got {num_params}.")
        if levels < 2 or levels % 2 == 0:
            raise ParameterError(
                f"policy 'kosugi_actor_critic': levels must be an odd number >= 3 (the middle level is the "
                f"neutral slider value), got {levels}."
            )
        self.num_params = num_params
        self.levels = levels
        self.thumbnail_size = thumbnail_size
        width = levels + 12  # six unpadded k3 Conv1d shorten the signal by 12
        chans = (3, 16, 32, 48, 48, 64, width)
        kernels = (3, 3, 2, 2, 2, 2)
        strides = (1, 2, 2, 2, 2, 2)
        trunk = []
        side = thumbnail_size
        for i, (k, s) in enumerate(zip(kernels, strides, strict=True)):
            bn = nn.BatchNorm2d(chans[i + 1], eps=bn_eps) if i > 0 else None
            trunk.append(_conv_bn(nn.Conv2d(chans[i], chans[i + 1], k, s, 1), bn))
            side = (side + 2 - k) // s + 1
        if side < 1:
            raise ParameterError(
                f"policy 'kosugi_actor_critic': thumbnail_size {thumbnail_size} is too small for the trunk."
            )
        self.trunk = nn.ModuleList(trunk)
        self.map_side = side
        self.value_head = nn.Linear(width * side * side, 1)
        hchans = (1, 16, 32, 48, 48, 64)
        head: list[nn.Module] = [
            _conv_bn(nn.Conv1d(hchans[i], hchans[i + 1], 3), nn.BatchNorm1d(hchans[i + 1], eps=bn_eps))
            for i in range(5)
        ]
        head.append(nn.Conv1d(64, num_params, 3))
        self.policy_head = nn.ModuleList(head)
        if weights is not None:
            load_chainer_npz(self, weights)

    def _check(self, x: Tensor) -> None:
        s = self.thumbnail_size
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3 or x.shape[2:] != (s, s):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(
                f"policy 'kosugi_actor_critic' takes RGB thumbnails N x 3 x {s} x {s} (float in [0, 1]), got {got}; "
                "resize photos with zoo.rl.editor.area_thumbnail first."
            )
        if not x.is_floating_point():
            raise InputError(f"policy 'kosugi_actor_critic' takes float images in [0, 1], got dtype {x.dtype}.")

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """Forward pass returning every intermediate the reference stores.

        Returns:
            ``h1`` .. ``h6`` (trunk outputs), ``pooled`` (N x (L+12)), ``logits`` (N x K x L), ``value`` (N,).
        """
        self._check(x)
        out: dict[str, Tensor] = {}
        h = x
        for i, layer in enumerate(self.trunk, start=1):
            h = layer(h)
            out[f"h{i}"] = h
        out["value"] = self.value_head(h.flatten(1)).squeeze(1)
        pooled = h.mean(dim=(2, 3))  # 3x3 average pool over the whole 3x3 map
        out["pooled"] = pooled
        s = pooled.unsqueeze(1)
        for layer in self.policy_head:
            s = layer(s)
        out["logits"] = s
        return out

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Slider logits and state value of a thumbnail batch.

        Args:
            x: thumbnails, ``N x 3 x 64 x 64``, RGB in [0, 1].

        Returns:
            ``(logits, value)``: ``N x K x L`` and ``N``.
        """
        f = self.forward_features(x)
        return f["logits"], f["value"]

    def load_weights(self, path: str | Path) -> None:
        """Load a Chainer ``.npz`` of the released model (see :func:`load_chainer_npz`)."""
        load_chainer_npz(self, path)


def chainer_key_map(model: KosugiActorCritic) -> dict[str, Tensor]:
    """Map each Chainer npz key of the released model to the tensor of ``model`` it fills.

    ``cK/W, cK/b`` -> trunk convs; ``bnK/{gamma,beta,avg_mean,avg_var}`` -> BatchNorm weight, bias, running
    mean and variance; ``dcK``/``dbnK`` -> the 1-D policy head; ``v/model/output/{W,b}`` -> value Linear.
    The layouts are identical (out, in, kh, kw), so no transposition is needed.
    """
    out: dict[str, Tensor] = {}

    def add_bn(prefix: str, bn: nn.Module) -> None:
        out[f"{prefix}/gamma"] = bn.weight
        out[f"{prefix}/beta"] = bn.bias
        out[f"{prefix}/avg_mean"] = bn.running_mean
        out[f"{prefix}/avg_var"] = bn.running_var

    for layers, names in ((model.trunk, _TRUNK), (model.policy_head, _HEAD)):
        for layer, (conv_name, bn_name) in zip(layers, names, strict=True):
            conv = layer[0] if isinstance(layer, nn.Sequential) else layer
            out[f"{conv_name}/W"] = conv.weight
            out[f"{conv_name}/b"] = conv.bias
            if bn_name is not None:
                add_bn(bn_name, layer[1])
    out["v/model/output/W"] = model.value_head.weight
    out["v/model/output/b"] = model.value_head.bias
    return out


def load_chainer_npz(model: KosugiActorCritic, path: str | Path) -> KosugiActorCritic:
    """Load the released Chainer weights (``chainer.serializers.save_npz`` of their ``SpiralModel``).

    Every expected key must be present with the right shape; ``bnK/N`` (Chainer's batch counter) is ignored.
    The file is read with ``allow_pickle=False``.

    Args:
        model: the network to fill (its K and L must match the file: 12 and 33 for the demo weights).
        path: the ``.npz`` file.

    Returns:
        ``model``, for chaining.

    Raises:
        DataError: the file is missing, unreadable, lacks keys, or its shapes do not fit ``model``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"policy 'kosugi_actor_critic': weights file {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zip/npy errors: say which file
        raise DataError(
            f"policy 'kosugi_actor_critic': cannot read {path} as a Chainer .npz: {load_failure(exc)}."
        ) from None
    targets = chainer_key_map(model)
    missing = sorted(set(targets) - set(arrays))
    if missing:
        raise DataError(
            f"policy 'kosugi_actor_critic': {path} is not a Chainer npz of this network: missing keys "
            f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}."
        )
    unexpected = sorted(k for k in set(arrays) - set(targets) if not k.endswith("/N"))
    if unexpected:
        raise DataError(
            f"policy 'kosugi_actor_critic': {path} has keys this network does not have: {', '.join(unexpected[:6])}."
        )
    with torch.no_grad():
        for key, tensor in targets.items():
            value = arrays[key]
            if tuple(value.shape) != tuple(tensor.shape):
                raise DataError(
                    f"policy 'kosugi_actor_critic': {path} key {key!r} has shape {tuple(value.shape)}, the network "
                    f"(K={model.num_params}, L={model.levels}) expects {tuple(tensor.shape)}."
                )
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(tensor.dtype))
    return model
