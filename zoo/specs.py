"""Recipe specs: component blocks, the model layout every adversarial recipe shares, ``train`` and ``tracking``.

No heavy imports here (no torch): recipes are validated before anything heavy runs. A field annotated with
``Component("generator")`` (etc.) holds a component block ``{name: ..., <params>}``, checked against the index.

Every adversarial recipe, whichever method it comes from, describes its model the same way
(:class:`AdversarialModelSpec`)::

    model:
      generator: {...}                     # U-Net, rl_editor (policy over a software), edit_regressor, ...
      discriminators:                      # one or more; each has its own objective and weight
        global: {network: {...}, objective: {...}, weight: 1.0}
        local:  {network: {name: local_patches, ...}, objective: {...}, weight: 1.0}
      losses:                              # content terms with weights (optionally also on local patches)
        sfp: {loss: {...}, weight: 1.0, patches: local}
      algorithm: {...}                     # only for a generator that is a policy over discrete levels

Trainers subclass :class:`CommonTrainSpec` (or :class:`AdversarialTrainSpec`) for their ``train`` keys; every spec
is strict: an unknown key is an error with a suggestion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from zoo.errors import ZooError, suggest
from zoo.registry import EntryInfo, find_entry


# ----------------------------------------------------------------------------------------------- blocks
@dataclasses.dataclass(frozen=True)
class ComponentKind:
    """Marks a recipe field that holds a component block of one kind."""

    kind: str


def _component_validator(kind: str):
    def validate(value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a {kind} block {{name: ..., <params>}} or a {kind} name, got {value!r}")
        if "name" not in value:
            raise ValueError(f"this {kind} block has no 'name' key (keys: {sorted(value)}); add name: <a {kind}>")
        name = value["name"]
        entry = _lookup(kind, str(name))
        known = {p.name for p in entry.params}
        for key in value:
            if key != "name" and known and key not in known:
                raise ValueError(
                    f"{kind} {name!r} has no parameter {key!r}.{suggest(key, known)} "
                    f"Accepted parameters: {', '.join(sorted(known))}"
                )
        return dict(value)

    return validate


def _lookup(kind: str, name: str) -> EntryInfo:
    try:
        return find_entry(name, kind)
    except ZooError as exc:
        raise ValueError(str(exc)) from None


class _ComponentAlias:
    """``Component("generator")``: the annotation of a recipe field holding a generator block.

    The call form keeps linters from reading the kind as a forward reference; ``Component["generator"]`` works too.
    """

    def __call__(self, kind: str) -> Any:
        return Annotated[dict[str, Any], ComponentKind(kind), BeforeValidator(_component_validator(kind))]

    __getitem__ = __call__


Component = _ComponentAlias()


# ----------------------------------------------------------------------------------------------- sections


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys (typos in recipes)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrackingSpec(StrictModel):
    """The recipe's ``tracking`` section (MLflow)."""

    enabled: bool = True
    uri: str | None = Field(
        None, description="MLflow tracking URI; default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db"
    )
    experiment: str | None = Field(None, description="experiment name; default: the recipe's name")
    run_name: str | None = None
    system_metrics: bool = Field(True, description="CPU/memory/GPU sampling (interval scaled to the run length)")
    log_model: bool = Field(True, description="log the final generator, weights only (artifact folder 'model')")
    log_checkpoints: bool = Field(True, description="upload each checkpoint as artifact checkpoints/last.pt")


class CommonTrainSpec(StrictModel):
    """Keys of the ``train`` section that mean the same for every trainer."""

    trainer: str
    steps: int = Field(1000, ge=1, description="optimisation steps (updates) in total")
    batch_size: int = Field(8, ge=1, description="images per process and step (DDP: per rank)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (seeded)")
    device: str = Field("auto", description="auto|cpu|cuda|cuda:N|mps (--device overrides)")
    amp: bool = Field(True, description="bf16 autocast on CUDA (never on CPU)")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA")
    compile: bool = Field(False, description="torch.compile the networks (CUDA)")
    checkpoint_every: int = Field(500, ge=1)
    log_every: int = Field(10, ge=1)
    sample_every: int = Field(200, ge=1)
    samples: int = Field(4, ge=0, description="images in each logged sample grid (0: none)")
    out_dir: str = Field("runs", description="run folders go to <out_dir>/<recipe name>/<timestamp>/")
    max_minutes: float | None = Field(
        None, gt=0, description="stop early (checkpoint, final model) once training has run this long; null: no limit"
    )
    on_nonfinite: Literal["stop"] = "stop"


# ----------------------------------------------------------------------------------------------- the model layout


class DiscriminatorSpec(StrictModel):
    """One discriminator with its adversarial objective and the weight of its term for the generator."""

    network: Component("discriminator")
    objective: Component("loss") = Field(default_factory=lambda: {"name": "lsgan"})
    weight: float = Field(1.0, ge=0, description="weight of this discriminator's generator loss / reward")


class ContentLossSpec(StrictModel):
    """One content term between the (undarkened) source and the output, with its weight."""

    loss: Component("loss")
    weight: float = Field(1.0, ge=0, description="weight (the RL paper's alpha for its MSE penalty)")
    patches: str | None = Field(
        None,
        description="name of a local-patch discriminator: also apply the loss to its windows (mean over patches)",
    )


class AdversarialModelSpec(StrictModel):
    """The ``model`` section of every adversarial recipe (the ``gan`` and ``rl`` trainers share it)."""

    generator: Component("generator")
    discriminators: dict[str, DiscriminatorSpec] = Field(min_length=1)
    losses: dict[str, ContentLossSpec] = Field(default_factory=dict)
    algorithm: Component("algorithm") | None = Field(
        None, description="the RL algorithm, only for a generator that is a policy over discrete slider levels"
    )


class AdversarialTrainSpec(CommonTrainSpec):
    """``train`` keys of the discriminator side, shared by every adversarial trainer."""

    d_steps: int = Field(
        1,
        ge=0,
        description="updates of each discriminator per generator update: the first on the current batch, the "
        "others on replayed images (replay_size > 0) or on the same batch",
    )
    lr_d: float | None = Field(None, gt=0, description="discriminator learning rate (default: train.lr)")
    betas_d: tuple[float, float] | None = Field(None, description="discriminator Adam betas (default: train.betas)")
    replay_size: int = Field(0, ge=0, description="real and generated images kept for the extra discriminator steps")
