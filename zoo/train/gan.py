"""The ``gan`` trainer: the generator learns by backpropagation against the shared adversarial core.

One step on a batch ``{"source", "target"[, "source_original"]}`` (the discriminator side is
:class:`zoo.train.adversarial.DiscriminatorSide`, shared with the ``rl`` trainer)::

    fake = G(source)["image"]                                   (source: possibly darkened, EnlightenGAN-style)
    windows = one draw of local-patch windows, shared by fake, real and source
    G step:  sum_d w_d * objective_d.generator_loss(D_d(fake), D_d(real))
           + sum_c w_c * content_c(original, fake) [+ content_c on the windows' patches, official patch_vgg]
    D steps: train.d_steps per discriminator: objective_d.critic_loss + objective_d.penalty, the first on this
             batch, the others on replayed images (train.replay_size > 0) or on the same detached fake

EnlightenGAN (``recipes/enlightengan.yaml``) is: ``enlightengan_unet``; ``global`` = ``patchgan_nonorm``
(n_layers 5) with ``ralsgan``; ``local`` = ``local_patches`` (6 x 32 px, ``patchgan_nonorm`` n_layers 4) with
``lsgan``; ``self_feature_preserving`` on the whole image plus the local patches. Adam 1e-4 (0.5, 0.999) for
every network, learning rate constant for 100 epochs then linearly to 0 over 100 more. Any differentiable
generator (``edit_regressor``, a plugin) trains the same way against any discriminators and losses.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from zoo.errors import TrainingError
from zoo.registry import register
from zoo.specs import AdversarialModelSpec, AdversarialTrainSpec, ContentLossSpec, DiscriminatorSpec
from zoo.train.adversarial import ContentTerms, DiscriminatorSide, check_adversarial_recipe, old_rl_layout_message
from zoo.train.base import Trainer

__all__ = ["ContentLossSpec", "DiscriminatorSpec", "GANModelSpec", "GANTrainSpec", "GANTrainer", "linear_decay"]

PAPER = "Jiang et al., IEEE TIP 2021"
GANModelSpec = AdversarialModelSpec  # the model layout every adversarial recipe shares


class GANTrainSpec(AdversarialTrainSpec):
    """The ``train`` section of the ``gan`` trainer (plus the keys every adversarial trainer shares)."""

    lr: float = Field(1e-4, gt=0, description="generator learning rate (and the discriminators' unless lr_d)")
    betas: tuple[float, float] = (0.5, 0.999)
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
    """Unpaired GAN training: a differentiable generator against named discriminators plus content losses.

    Generic over the generator (any generator that learns by backpropagation), the set of discriminators (each
    with its own adversarial objective, weight and Adam optimiser) and the weighted content losses; G step, then
    the discriminator steps of the shared core. Local-patch discriminators draw their windows once per step,
    shared by the fake, the real and the source images.
    """

    ModelSpec = GANModelSpec
    TrainSpec = GANTrainSpec

    @classmethod
    def upgrade_message(cls, source: str, model: dict[str, Any], train: dict[str, Any]) -> str | None:
        return old_rl_layout_message(source, model, train)

    @classmethod
    def check_recipe(cls, recipe: Any) -> None:
        check_adversarial_recipe(recipe, learning="backprop", trainer="gan")

    # ------------------------------------------------------------------------------------------- build

    def build(self) -> None:
        cfg: GANTrainSpec = self.cfg  # type: ignore[assignment]
        self.G = self.add_module("generator", self.build_generator())
        opt_g = self.add_optimizer(
            "generator", torch.optim.Adam(self.module("generator").parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        )
        self.side = DiscriminatorSide(self)
        self.content = ContentTerms(self, self.side)
        steps_per_epoch = max(1, math.ceil(len(self.dataset) / (cfg.batch_size * self.dist.world_size)))
        self.steps_per_epoch = steps_per_epoch

        def factor(step: int) -> float:
            return linear_decay(step, steps_per_epoch, cfg.constant_epochs, cfg.decay_epochs)

        for name, opt in {"generator": opt_g, **{f"d_{n}": self.optimizers[f"d_{n}"] for n in self.side.names}}.items():
            self.add_scheduler(name, torch.optim.lr_scheduler.LambdaLR(opt, factor))

    @property
    def generator(self) -> nn.Module:
        return self.module("generator")

    # ------------------------------------------------------------------------------------------- one step

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        source = batch["source"]
        original = batch.get("source_original", source)  # the feature-preserving loss compares with the undarkened
        real = batch["target"]
        windows = self.side.draw_windows(source)

        # ---- generator step (discriminators frozen)
        self.G.train()
        with self.autocast():
            fake = self.G(source)["image"]
        adversarial, out = self.side.generator_loss(fake, real, windows, self.autocast)
        with self.autocast():
            content, parts = self.content.total(original, fake, windows)
        out.update(parts)
        loss_g = adversarial + content
        if not loss_g.requires_grad:
            name = self.recipe.model.generator["name"]
            raise TrainingError(
                f"{self.recipe.where('model.generator')}: the output of {name} does not depend on its parameters "
                "through autograd, so it cannot learn by backpropagation under the gan trainer."
            )
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        out["loss/g"] = float(loss_g.detach())

        # ---- discriminator steps on the detached fake (the shared core)
        stats, _ = self.side.update(real, fake, windows, self.autocast)
        out.update(stats)
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"discriminators": self.side.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.side.load_state_dict(state.get("discriminators") or {})

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
