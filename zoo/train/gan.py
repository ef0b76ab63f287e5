"""The ``gan`` trainer: any generator, any named discriminators with their objectives, any weighted content losses.

One step on a batch ``{"source", "target"[, "source_original"]}``::

    fake = G(source)["image"]                                   (source: possibly darkened, EnlightenGAN-style)
    windows[d] = D_d.sample_windows(...)  for local-patch discriminators (one draw, shared by fake/real/source)
    G step:  sum_d w_d * objective_d.generator_loss(D_d(fake), D_d(real))
           + sum_c w_c * content_c(original, fake) [+ content_c on the windows' patches, official patch_vgg]
    D steps: for every d, ``d_steps`` times on the same detached fake:
             objective_d.critic_loss(D_d(real), D_d(fake)) + objective_d.penalty(D_d, real, fake)

EnlightenGAN (``recipes/enlightengan.yaml``) is: ``enlightengan_unet``; ``global`` = ``patchgan_nonorm``
(n_layers 5) with ``ralsgan``; ``local`` = ``local_patches`` (6 x 32 px, ``patchgan_nonorm`` n_layers 4) with
``lsgan``; ``self_feature_preserving`` on the whole image plus the local patches. Adam 1e-4 (0.5, 0.999) for
every network, learning rate constant for 100 epochs then linearly to 0 over 100 more.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from zoo.errors import ParameterError, RecipeError
from zoo.recipe import Component
from zoo.registry import create, register
from zoo.specs import CommonTrainSpec, StrictModel
from zoo.train.base import Trainer

__all__ = ["ContentLossSpec", "DiscriminatorSpec", "GANModelSpec", "GANTrainSpec", "GANTrainer", "linear_decay"]

PAPER = "Jiang et al., IEEE TIP 2021"


class DiscriminatorSpec(StrictModel):
    """One discriminator with its adversarial objective and the weight of its generator loss."""

    network: Component("discriminator")
    objective: Component("loss") = Field(default_factory=lambda: {"name": "lsgan"})
    weight: float = Field(1.0, ge=0)


class ContentLossSpec(StrictModel):
    """One content loss between the (undarkened) source and the output, with its weight."""

    loss: Component("loss")
    weight: float = Field(1.0, ge=0)
    patches: str | None = Field(
        None,
        description="name of a local-patch discriminator: also apply the loss to its windows (mean over patches)",
    )


class GANModelSpec(StrictModel):
    """The ``model`` section of a GAN recipe."""

    generator: Component("generator")
    discriminators: dict[str, DiscriminatorSpec] = Field(min_length=1)
    losses: dict[str, ContentLossSpec] = Field(default_factory=dict)


class GANTrainSpec(CommonTrainSpec):
    """The ``train`` section of the ``gan`` trainer (plus the keys every trainer shares)."""

    lr: float = Field(1e-4, gt=0, description="generator learning rate")
    lr_d: float | None = Field(None, gt=0, description="discriminator learning rate (default: lr)")
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = Field(1, ge=1, description="updates of each discriminator per generator update (same fake)")
    constant_epochs: float = Field(100, ge=0, description="epochs at the initial learning rate")
    decay_epochs: float = Field(100, ge=0, description="then epochs of linear decay to 0 (0: no decay)")


def linear_decay(step: int, steps_per_epoch: int, constant_epochs: float, decay_epochs: float) -> float:
    """Learning-rate factor of the official schedule: 1 for ``constant_epochs``, then -1/decay per finished epoch.

    Args:
        step: optimisation steps done.
        steps_per_epoch: steps in one epoch (``ceil(len(dataset) / batch)``).
        constant_epochs: epochs at the full rate (official ``niter`` = 100).
        decay_epochs: epochs of linear decay (official ``niter_decay`` = 100).

    Returns:
        The factor in [0, 1].
    """
    if decay_epochs <= 0:
        return 1.0
    epoch = step // max(steps_per_epoch, 1)  # the official code lowers the rate at epoch ends
    return max(0.0, 1.0 - max(0.0, epoch - constant_epochs) / decay_epochs)


@register("trainer", "gan", paper=PAPER, tags=("enlightengan",))
class GANTrainer(Trainer):
    """Unpaired GAN training: a generator against named discriminators (global, local...) plus content losses.

    Generic over the generator, the set of discriminators (each with its own adversarial objective, weight and
    Adam optimiser) and the weighted content losses; G step, then D steps on the same detached fake. Local-patch
    discriminators draw their windows once per step, shared by the fake, the real and the source images.
    """

    ModelSpec = GANModelSpec
    TrainSpec = GANTrainSpec

    @classmethod
    def check_recipe(cls, recipe: Any) -> None:
        model: GANModelSpec = recipe.model
        for name, spec in model.losses.items():
            if spec.patches is not None and spec.patches not in model.discriminators:
                raise RecipeError(
                    f"{recipe.where(f'model.losses.{name}.patches')}: there is no discriminator {spec.patches!r}; "
                    f"model.discriminators has {', '.join(sorted(model.discriminators))}."
                )

    # ------------------------------------------------------------------------------------------- build

    def build(self) -> None:
        cfg: GANTrainSpec = self.cfg  # type: ignore[assignment]
        model: GANModelSpec = self.model_cfg  # type: ignore[assignment]
        self.G = self.add_module("generator", self.build_generator())
        betas = tuple(cfg.betas)
        opt_g = self.add_optimizer(
            "generator", torch.optim.Adam(self.module("generator").parameters(), lr=cfg.lr, betas=betas)
        )
        self.D: dict[str, nn.Module] = {}
        self.objectives: dict[str, nn.Module] = {}
        optimisers = {"generator": opt_g}
        for name, spec in model.discriminators.items():
            where = self.recipe.where(f"model.discriminators.{name}")
            objective = create("loss", spec.objective, where=f"{where}.objective")
            if not getattr(objective, "is_adversarial", False):
                raise ParameterError(
                    f"{where}.objective: {spec.objective.get('name')!r} is a content loss, not an adversarial "
                    "objective (lsgan, ralsgan, wgan_gp, hinge, nonsaturating)."
                )
            self.objectives[name] = objective.to(self.device)
            self.D[name] = self.add_module(f"d_{name}", create("discriminator", spec.network, where=f"{where}.network"))
            optimisers[f"d_{name}"] = self.add_optimizer(
                f"d_{name}", torch.optim.Adam(self.module(f"d_{name}").parameters(), lr=cfg.lr_d or cfg.lr, betas=betas)
            )
        self.content: dict[str, nn.Module] = {}
        for name, spec in model.losses.items():
            where = self.recipe.where(f"model.losses.{name}")
            loss = create("loss", spec.loss, where=f"{where}.loss")
            if getattr(loss, "is_adversarial", False):
                raise ParameterError(
                    f"{where}.loss: {spec.loss.get('name')!r} is an adversarial objective; put it "
                    "under model.discriminators."
                )
            if spec.patches is not None and not hasattr(self.module(f"d_{spec.patches}"), "crop"):
                raise ParameterError(
                    f"{where}.patches: discriminator {spec.patches!r} does not cut local patches (use local_patches)."
                )
            ready = getattr(loss, "check_ready", None)
            if ready is not None:
                ready()  # e.g. missing pretrained weights: stop here, before the first step
            self.content[name] = loss.to(self.device)
        steps_per_epoch = max(1, math.ceil(len(self.dataset) / (cfg.batch_size * self.dist.world_size)))
        self.steps_per_epoch = steps_per_epoch

        def factor(step: int) -> float:
            return linear_decay(step, steps_per_epoch, cfg.constant_epochs, cfg.decay_epochs)

        for name, opt in optimisers.items():
            self.add_scheduler(name, torch.optim.lr_scheduler.LambdaLR(opt, factor))

    @property
    def generator(self) -> nn.Module:
        return self.module("generator")

    # ------------------------------------------------------------------------------------------- one step

    def _windows(self, name: str, like: Tensor) -> Tensor | None:
        d = self.module(f"d_{name}")
        if not hasattr(d, "sample_windows"):
            return None
        return d.sample_windows(like.shape[0], like.shape[-2], like.shape[-1], like.device)

    @staticmethod
    def _call(d: nn.Module, x: Tensor, windows: Tensor | None) -> Tensor:
        return d(x) if windows is None else d(x, windows=windows)

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        cfg: GANTrainSpec = self.cfg  # type: ignore[assignment]
        model: GANModelSpec = self.model_cfg  # type: ignore[assignment]
        source = batch["source"]
        original = batch.get("source_original", source)  # the feature-preserving loss compares with the undarkened
        real = batch["target"]
        windows = {name: self._windows(name, source) for name in self.D}
        out: dict[str, float] = {}

        # ---- generator step (discriminators frozen, called unwrapped: no DDP sync for their unused grads)
        self.G.train()
        with self.autocast():
            fake = self.G(source)["image"]
        for name in self.D:
            self.module(f"d_{name}").requires_grad_(False)
        loss_g = fake.new_zeros((), dtype=torch.float32)
        for name, spec in model.discriminators.items():
            d, objective, w = self.module(f"d_{name}"), self.objectives[name], windows[name]
            with self.autocast():
                fake_scores = self._call(d, fake, w)
                real_scores = None
                if getattr(objective, "needs_real_for_generator", False):
                    with torch.no_grad():
                        real_scores = self._call(d, real, w)
            adv = objective.generator_loss(fake_scores.float(), None if real_scores is None else real_scores.float())
            loss_g = loss_g + spec.weight * adv
            out[f"loss/g_{name}"] = float(adv.detach())
        for name, spec in model.losses.items():
            loss_fn = self.content[name]
            with self.autocast():
                value = loss_fn(original, fake).float()
                if spec.patches is not None:
                    d = self.module(f"d_{spec.patches}")
                    w = windows[spec.patches]
                    value = value + loss_fn(d.crop(original, w), d.crop(fake, w)).float()
            loss_g = loss_g + spec.weight * value
            out[f"loss/{name}"] = float(value.detach())
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        out["loss/g"] = float(loss_g.detach())
        for name in self.D:
            self.module(f"d_{name}").requires_grad_(True)

        # ---- discriminator steps on the same detached fake
        fake_d = fake.detach()
        for name in model.discriminators:
            d_wrapped, objective, w = self.D[name], self.objectives[name], windows[name]
            d_plain = self.module(f"d_{name}")
            opt_d = self.optimizers[f"d_{name}"]
            for _ in range(cfg.d_steps):
                with self.autocast():
                    real_scores = self._call(d_wrapped, real, w).float()
                    fake_scores = self._call(d_wrapped, fake_d, w).float()
                loss_d = objective.critic_loss(real_scores, fake_scores)
                # double backward does not go through DDP: the penalty uses the unwrapped network
                gp = objective.penalty(lambda x, d=d_plain, w=w: self._call(d, x, w).float(), real, fake_d)
                opt_d.zero_grad(set_to_none=True)
                (loss_d + gp).backward()
                opt_d.step()
            out[f"loss/d_{name}"] = float(loss_d.detach()) + float(gp.detach())
            out[f"score/{name}_real"] = float(real_scores.detach().mean())
            out[f"score/{name}_fake"] = float(fake_scores.detach().mean())
        return out

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """source | output | attention (when the generator returns one), generator in eval mode."""
        gen = self.generator
        was = gen.training
        gen.eval()
        try:
            result = gen(batch["source"])
        finally:
            gen.train(was)
        images = {"source": batch["source"], "output": result["image"]}
        att = result.get("attention")
        if isinstance(att, Tensor) and att.shape[-2:] == result["image"].shape[-2:]:
            images["attention"] = att.expand(-1, 3, -1, -1).clamp(0, 1)
        return images
