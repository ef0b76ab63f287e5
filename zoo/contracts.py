"""Declared interfaces: one base class per component kind, and the contract each component states about itself.

A recipe can only be checked before training if its components say what they need and what they give. Each kind
has a base class here that its components subclass, and every base class has a ``contract(params)`` classmethod
that answers from the constructor parameters alone, without building the component (no tensor is allocated):

==============  =================================  ===========================================================
kind            base class                         contract: what ``zoo recipe check`` relies on
==============  =================================  ===========================================================
generator       :class:`Generator`                 how it learns (backprop, policy, or not at all), input size
                :class:`SliderGenerator`           + the software it drives (K sliders), L levels, thumbnail
discriminator   :class:`Discriminator`             input sizes it accepts; unbounded scores, logits or
                                                   probabilities; the patch size of a local-patch wrapper
loss            :class:`AdversarialObjective`      the score ranges it is meaningful on; whether it can give a
                (``zoo.losses.adversarial``)       per-image reward; relativistic; shift-invariant critic
                :class:`ContentLoss`               per-image values (for rewards); pretrained weights needed
dataset         :class:`Dataset`                   the size of the images it yields (``None``: they vary)
==============  =================================  ===========================================================

Policies, algorithms, softwares, editors and metrics have declared interfaces too (:class:`Policy`,
:class:`Algorithm`, ``zoo.editing.software.Software``, ``zoo.editing.base.Operator``, :class:`Metric`).

A component that does not subclass its kind's base class (a plugin written against the bare ``nn.Module``
contract) gets the kind's permissive default contract; ``zoo recipe check --dry-run`` still runs one step of it.
Use :func:`contract_of` to read the contract of a recipe block.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = [
    "SCORE_RANGES",
    "AdversarialContract",
    "Algorithm",
    "ContentLoss",
    "ContentLossContract",
    "Dataset",
    "DatasetContract",
    "Discriminator",
    "DiscriminatorContract",
    "Generator",
    "GeneratorContract",
    "Metric",
    "PatchDiscriminator",
    "Policy",
    "PolicySliderGenerator",
    "SliderGenerator",
    "block_params",
    "contract_of",
]

ScoreRange = Literal["unbounded", "logits", "probabilities"]
SCORE_RANGES: tuple[str, ...] = ("unbounded", "logits", "probabilities")
Learning = Literal["backprop", "policy", "none"]


# ----------------------------------------------------------------------------------------------- contracts


@dataclasses.dataclass(frozen=True)
class GeneratorContract:
    """What a generator declares.

    Attributes:
        learning: ``"backprop"`` (differentiable: the ``gan`` trainer), ``"policy"`` (discrete slider levels chosen
            by a policy: the ``rl`` trainer) or ``"none"`` (training-free, e.g. the classical baselines).
        software: name of the editing software it drives (slider generators), else ``None``.
        num_params: K, the software's slider count (slider generators).
        levels: L, discrete levels per slider (policies).
        thumbnail_size: side of the thumbnail it looks at (slider generators), else ``None``.
        min_size: the smallest input side it accepts.
    """

    learning: Learning = "backprop"
    software: str | None = None
    num_params: int | None = None
    levels: int | None = None
    thumbnail_size: int | None = None
    min_size: int = 1

    @property
    def has_sliders(self) -> bool:
        return self.software is not None


@dataclasses.dataclass(frozen=True)
class DiscriminatorContract:
    """What a discriminator declares.

    Attributes:
        input_size: the only ``(H, W)`` it accepts, or ``None`` for any size of at least ``min_size``.
        min_size: the smallest input side (``None``-sized discriminators).
        scores: ``"unbounded"`` raw scores, ``"logits"`` (a sigmoid would make them probabilities) or
            ``"probabilities"`` (already squashed into [0, 1]).
        patch_size: for local-patch discriminators, the side of the windows they cut (the inner network's input).
    """

    input_size: tuple[int, int] | None = None
    min_size: int = 1
    scores: ScoreRange = "unbounded"
    patch_size: int | None = None

    def accepts(self, size: tuple[int, int]) -> bool:
        if self.input_size is not None:
            return tuple(size) == tuple(self.input_size)
        return min(size) >= self.min_size

    def describe_sizes(self) -> str:
        if self.input_size is not None:
            return f"{self.input_size[0]} x {self.input_size[1]} images"
        return f"images of at least {self.min_size} x {self.min_size}"


@dataclasses.dataclass(frozen=True)
class AdversarialContract:
    """What an adversarial objective declares.

    Attributes:
        accepts: the score ranges it is meaningful on (e.g. a Wasserstein critic needs unbounded scores).
        gives_reward: it defines a per-image reward (for policy-gradient generators).
        relativistic: its generator loss and reward compare fake scores with real ones (they need the real scores).
        shift_invariant: its critic loss is unchanged when every score moves by the same constant; then its reward
            is too (the absolute level of such a critic means nothing).
    """

    accepts: frozenset[str] = frozenset(SCORE_RANGES)
    gives_reward: bool = True
    relativistic: bool = False
    shift_invariant: bool = False


@dataclasses.dataclass(frozen=True)
class ContentLossContract:
    """What a content loss declares.

    Attributes:
        per_image: it gives one value per image (``per_image``), so it can be a reward penalty.
        needs_pretrained: it needs pretrained weights that may be missing (the check says how to get them).
    """

    per_image: bool = True
    needs_pretrained: bool = False


@dataclasses.dataclass(frozen=True)
class DatasetContract:
    """What a dataset declares: the ``(H, W)`` of every image it yields, or ``None`` when sizes vary."""

    image_size: tuple[int, int] | None = None


# ----------------------------------------------------------------------------------------------- base classes


class Generator(nn.Module):
    """Base class of generators: ``forward(images) -> {"image": ..., <extras>}``.

    Input ``N x 3 x H x W`` float RGB in [0, 1]; the output image has the same shape and range. Extras go under
    ``"attention"``, ``"latent"``, ``"params"`` (slider values ``N x K``) and so on.
    """

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> GeneratorContract:
        """The contract for these constructor parameters (defaults filled in). Default: differentiable."""
        return GeneratorContract("backprop")


class SliderGenerator(Generator):
    """A generator whose output is a set of named slider values applied by an editing software.

    Subclasses hold the software as ``self.software`` and implement :meth:`propose`; ``forward`` then applies the
    proposal at the input's own resolution and returns ``{"image", "params", ...}``. Sidecars (JSON, XMP) and
    ``zoo studio`` work with any slider generator through these two members.
    """

    software: Any  # zoo.editing.software.Software

    def propose(self, images: Tensor) -> Tensor:
        """Slider values ``N x K`` for a batch ``N x 3 x H x W`` in [0, 1] (any size)."""
        raise NotImplementedError

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        params = self.propose(images)
        return {"image": self.software.apply(images, params), "params": params}


class PolicySliderGenerator(SliderGenerator):
    """A slider generator whose sliders are discrete levels chosen by a policy (what the ``rl`` trainer trains).

    Subclasses hold ``self.policy`` (a :class:`Policy`), ``self.levels`` (L) and ``self.thumbnail_size``, and
    implement :meth:`decide`, the acting step that training and inference share.
    """

    policy: nn.Module
    levels: int
    thumbnail_size: int

    def decide(self, images: Tensor, deterministic: bool | None = None) -> dict[str, Tensor]:
        """Pick levels for ``images``: ``{"params", "actions", "log_prob", "value", "logits", "thumbnail"}``."""
        raise NotImplementedError

    def propose(self, images: Tensor) -> Tensor:
        return self.decide(images)["params"]


class Discriminator(nn.Module):
    """Base class of discriminators: ``forward(images) -> scores`` (``N x 1 x h x w`` patch map or ``N x 1``)."""

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> DiscriminatorContract:
        """The contract for these constructor parameters (defaults filled in). Default: any size, unbounded."""
        return DiscriminatorContract()


class PatchDiscriminator(Discriminator):
    """A discriminator that scores windows cut from the images (EnlightenGAN's local discriminator).

    The same windows must be cut from the generated, the real and the source images in one step, so trainers draw
    them once with :meth:`sample_windows` and pass them to every call, and to :meth:`crop` for content losses
    computed on the patches.
    """

    def sample_windows(self, n: int, height: int, width: int, device: Any = None, generator: Any = None) -> Tensor:
        """Corners ``P x n x 2`` (top, left) of the windows for a batch of ``n`` images of ``height x width``."""
        raise NotImplementedError

    def crop(self, images: Tensor, windows: Tensor) -> Tensor:
        """The windows of ``images``: ``(P * N) x C x p x p``."""
        raise NotImplementedError

    def forward(self, x: Tensor, windows: Tensor | None = None) -> Tensor:
        raise NotImplementedError


class ContentLoss(nn.Module):
    """Base class of content losses: ``forward(source, output) -> scalar``, ``per_image(...) -> (N,)``."""

    is_adversarial: ClassVar[bool] = False

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> ContentLossContract:
        return ContentLossContract()

    def per_image(self, source: Tensor, output: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, source: Tensor, output: Tensor) -> Tensor:
        return self.per_image(source, output).mean()

    def target(self, source: Tensor) -> Tensor:
        """The output this loss does not penalise for ``source`` (its value there is 0): the source itself, unless
        the loss compares with something made from it (``anchor_mse``: a classical enhancement of it)."""
        return source


class Policy(nn.Module):
    """Base class of policies: ``forward(thumbnails N x 3 x S x S) -> (logits N x K x L, value N)``.

    Attributes set by subclasses: ``num_params`` (K), ``levels`` (L), ``thumbnail_size`` (S).
    """

    num_params: int
    levels: int
    thumbnail_size: int


@runtime_checkable
class Algorithm(Protocol):
    """An RL algorithm (one file each, CleanRL style): ``bind(policy)`` then ``update(rollout) -> metrics``.

    ``uses_value`` says whether the loss uses the policy's value output (DDP must know about unused outputs).
    """

    uses_value: bool
    optimizer: torch.optim.Optimizer | None

    def bind(self, policy: nn.Module) -> None: ...

    def update(self, batch: Any) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Metric(Protocol):
    """A metric: ``__call__(pred, ref=None) -> (N,)`` per image, with its direction and whether it needs a ref."""

    higher_is_better: bool | None
    needs_reference: bool

    def __call__(self, pred: Tensor, ref: Tensor | None = None) -> Tensor: ...


class Dataset:
    """Mixin declaring a dataset's contract: the size of the images it yields (from its parameters)."""

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> DatasetContract:
        resize = params.get("resize")
        if resize:
            return DatasetContract((int(resize), int(resize)))
        crop = params.get("crop_size")
        if crop:
            return DatasetContract((int(crop), int(crop)))
        return DatasetContract(None)


# ----------------------------------------------------------------------------------------------- lookup

_DEFAULTS: dict[str, Any] = {
    "generator": GeneratorContract(),
    "discriminator": DiscriminatorContract(),
    "dataset": DatasetContract(),
}


def block_params(kind: str, block: Mapping[str, Any] | str) -> tuple[Any, dict[str, Any]]:
    """The registered class of a block and its full parameters (the block's, then the signature's defaults)."""
    from zoo.registry import get, split_block

    name, params = split_block(block)
    obj = get(kind, name)
    full: dict[str, Any] = {}
    target = obj.__init__ if inspect.isclass(obj) else obj
    for p in inspect.signature(target).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is not inspect.Parameter.empty:
            full[p.name] = p.default
    full.update(params)
    return obj, full


def contract_of(kind: str, block: Mapping[str, Any] | str) -> Any:
    """The contract a recipe block declares, read from its class and parameters (nothing is built).

    Args:
        kind: ``generator``, ``discriminator``, ``loss`` or ``dataset``.
        block: ``{name: ..., <params>}`` or a bare name.

    Returns:
        A :class:`GeneratorContract`, :class:`DiscriminatorContract`, :class:`AdversarialContract` or
        :class:`ContentLossContract` (``loss``: whichever the loss is), or :class:`DatasetContract`.
    """
    obj, params = block_params(kind, block)
    contract = getattr(obj, "contract", None) if inspect.isclass(obj) else None
    bases = {
        "generator": Generator,
        "discriminator": Discriminator,
        "dataset": Dataset,
    }
    if kind == "loss":
        from zoo.losses.adversarial import AdversarialObjective

        if inspect.isclass(obj) and issubclass(obj, (AdversarialObjective, ContentLoss)):
            return obj.contract(params)
        adversarial = bool(getattr(obj, "is_adversarial", False))
        return AdversarialContract() if adversarial else ContentLossContract()
    base = bases.get(kind)
    if base is not None and inspect.isclass(obj) and issubclass(obj, base) and contract is not None:
        return contract(params)
    return _DEFAULTS.get(kind)
