"""The ``rl`` trainer: the generator is a policy over discrete slider levels, learning by policy gradient.

RL-controlled editing (Kosugi & Yamasaki, AAAI 2020), batched and synchronous, on the adversarial core that the
``gan`` trainer shares (:mod:`zoo.train.adversarial`). One step (= one agent update) on a batch of ``N`` source
and ``N`` real (target-domain) images at the data's resolution::

    source, real = q8(source), q8(real)          (train.quantize: the reference's uint8 pipeline)
    decision = editor.decide(source)             (the editor's own acting step: its thumbnail, levels sampled)
    edited = q8(software(source, sliders))       (applied at the data's resolution)
    D steps: train.d_steps per discriminator (first on this batch, the others replayed); their scores of this
             batch, taken before the update (the networks the episode met), give the reward:
    R = sum_i w_i * objective_i.reward(D_i(edited), D_i(real)) - sum_j w_j * loss_j.per_image(source, edited)
    agent update: the algorithm (a2c / ppo / reinforce) on (thumbnail, levels, R)

With the paper's pieces (one ``kosugi_critic`` with ``wgan_gp``, ``mse`` with weight alpha = 100, 64 x 64 data)
this is ``D(edited) - 100 * MSE(source, edited)`` (WGAN-GP's reward is measured from the real images' mean score,
see :class:`zoo.losses.adversarial.WGANGP`). Episodes are one step long, so a batch of photos is a batch of
episodes. Checkpoints hold the policy, the discriminators, their optimisers, the algorithm's own state and the
replay buffer.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from zoo.contracts import PolicySliderGenerator
from zoo.errors import TrainingError
from zoo.registry import create, register
from zoo.specs import AdversarialModelSpec, AdversarialTrainSpec
from zoo.train.adversarial import ContentTerms, DiscriminatorSide, check_adversarial_recipe, old_rl_layout_message
from zoo.train.base import Trainer

PAPER = "Kosugi & Yamasaki, AAAI 2020"
RLModelSpec = AdversarialModelSpec  # the model layout every adversarial recipe shares


class RLTrainSpec(AdversarialTrainSpec):
    """The ``train`` section of the ``rl`` trainer (plus the keys every adversarial trainer shares)."""

    batch_size: int = Field(20, ge=1, description="episodes (photos) per agent update (20 in the paper)")
    d_steps: int = Field(
        5, ge=0, description="discriminator updates per agent update: 1 on the batch, the rest replayed"
    )
    replay_size: int = Field(1000, ge=0, description="real and edited images kept for the extra discriminator steps")
    lr_d: float | None = Field(1e-4, gt=0, description="discriminator learning rate")
    betas_d: tuple[float, float] | None = (0.5, 0.999)
    quantize: bool = Field(
        True, description="round source, real and edited images to 8 bits, as the reference's uint8 pipeline does"
    )
    cache_thumbnails: bool = Field(
        True, description="decode each file once and keep its thumbnail (when data.resize is the thumbnail size)"
    )


@register("trainer", "rl", paper=PAPER, tags=("rl_edit",))
class RLTrainer(Trainer):
    """Policy-gradient training of a slider policy (RL-controlled editing) against any discriminators and losses.

    Batched, synchronous one-step episodes; any registered algorithm (a2c, ppo, reinforce), any set of
    discriminators with objectives that give a per-image reward (the paper's WGAN-GP critic, EnlightenGAN's global
    and local discriminators...), any per-image content losses as penalties. Metrics: the reward and its parts,
    discriminator scores, losses and gradient penalties, policy entropy and losses, and the mean chosen value of
    every slider; sample grids (source | edited) every ``train.sample_every`` updates.
    """

    ModelSpec = RLModelSpec
    TrainSpec = RLTrainSpec

    # ----------------------------------------------------------------------------------------- building

    @classmethod
    def upgrade_message(cls, source: str, model: dict[str, Any], train: dict[str, Any]) -> str | None:
        return old_rl_layout_message(source, model, train)

    @classmethod
    def check_recipe(cls, recipe: Any) -> None:
        check_adversarial_recipe(recipe, learning="policy", trainer="rl")

    def build(self) -> None:
        cfg: RLTrainSpec = self.cfg  # type: ignore[assignment]
        editor = self.build_generator()
        if not isinstance(editor, PolicySliderGenerator):
            raise TrainingError(
                f"{self.recipe.where('model.generator')}: the rl trainer needs a policy slider generator "
                f"(zoo.contracts.PolicySliderGenerator, e.g. rl_editor); {type(editor).__name__} is not one."
            )
        self.editor = editor.to(self.device)
        self.software = self.editor.software
        self.algorithm = create("algorithm", self.model_cfg.algorithm, where=self.recipe.where("model.algorithm"))
        # channels_last makes these small convolutions 2-4x faster on the CPU too (the base uses it on CUDA)
        self._cl = self.device.type == "cpu" or self.channels_last
        if self._cl:
            self.editor.policy.to(memory_format=torch.channels_last)
        # REINFORCE leaves the value head out of the loss: DDP must be told
        self.policy = self.add_module(
            "policy", self.editor.policy, find_unused_parameters=not getattr(self.algorithm, "uses_value", True)
        )
        self.algorithm.bind(self.policy)
        self.add_optimizer("policy", self.algorithm.optimizer)
        self.side = DiscriminatorSide(self, channels_last=self._cl)
        self.content = ContentTerms(self, self.side)
        if cfg.cache_thumbnails and self.dataset is not None:
            _cache_thumbnails(self.dataset, self.recipe.data, int(self.editor.thumbnail_size), self.log)

    @property
    def generator(self) -> nn.Module:
        return self.editor

    # ----------------------------------------------------------------------------------------- one update

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        from zoo.rl.common import Rollout
        from zoo.rl.editor import quantize_8bit

        cfg: RLTrainSpec = self.cfg  # type: ignore[assignment]
        source = batch["source"].float().clamp(0, 1)
        real = batch["target"].float().clamp(0, 1)
        if cfg.quantize:
            source, real = quantize_8bit(source), quantize_8bit(real)
        self.editor.train()

        # act: the editor's own decision step (thumbnail, sampled levels), the edit at the data's resolution
        with torch.no_grad():
            decision = self.editor.decide(source, deterministic=False)
            edited = self.software.apply(source, decision["params"])
        if cfg.quantize:
            edited = quantize_8bit(edited)

        # discriminators: their scores of this batch before the update are the reward's (what the episode met)
        windows = self.side.draw_windows(source)
        out, scores = self.side.update(real, edited, windows, self.autocast)
        adversarial, adv_parts = self.side.reward(scores)
        penalty, pen_parts = self.content.per_image(source, edited, windows)
        reward = adversarial - penalty

        # agent
        obs = decision["thumbnail"]
        obs = obs.contiguous(memory_format=torch.channels_last) if self._cl else obs
        rollout = Rollout(obs, decision["actions"], reward, decision["log_prob"], decision["value"])
        stats = self.algorithm.update(rollout)

        out.update(
            {
                "reward/mean": float(reward.mean()),
                "reward/adversarial": float(adversarial.mean()),
                "reward/penalty": float(penalty.mean()),
                "policy/value": float(decision["value"].mean()),
            }
        )
        out.update({f"reward/{name}": float(r.mean()) for name, r in adv_parts.items()})
        out.update({f"penalty/{name}": float(p.mean()) for name, p in pen_parts.items()})
        out.update({f"policy/{key}": float(value) for key, value in stats.items()})
        means = decision["params"].mean(0).tolist()
        out.update({f"slider/{name}": value for name, value in zip(self.software.names, means, strict=True)})
        return out

    # ----------------------------------------------------------------------------------------- state & samples

    def extra_state(self) -> dict[str, Any]:
        algo = {k: v for k, v in self.algorithm.state_dict().items() if k != "optimizer"}  # the base saves optimisers
        return {"discriminators": self.side.state_dict(), "algorithm": algo}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.side.load_state_dict(state.get("discriminators") or {})
        algo = state.get("algorithm") or {}
        if algo:
            self.algorithm.load_state_dict(algo)

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """source | edited (argmax levels, BatchNorm in eval mode), at the data's resolution."""
        was = self.editor.training
        self.editor.eval()
        try:
            edited = self.editor(batch["source"].float().clamp(0, 1))["image"]
        finally:
            self.editor.train(was)
        return {"source": batch["source"], "edited": edited}


# --------------------------------------------------------------------------------------------- data


def _cache_thumbnails(dataset: Any, data_cfg: dict[str, Any], size: int, log: Any) -> None:
    """Decode each source/target file once and keep its area-resized thumbnail.

    Valid only when the data pipeline resizes whole images to ``size x size`` (``resize: size``, no crop or
    load_size): resizing the cached thumbnail again to the same size is then the identity, so the samples are
    exactly what an uncached run sees, minus the repeated JPEG decoding (about 25 ms per DICM photo).
    """
    import functools

    import cv2
    import numpy as np

    if not (hasattr(dataset, "load_source") and hasattr(dataset, "load_target")):
        return
    if data_cfg.get("resize") != size or data_cfg.get("crop_size") is not None or data_cfg.get("load_size"):
        log.info("thumbnail cache off: data.resize is not %d (or a crop/load_size is set)", size)
        return
    if getattr(dataset, "cache", False):  # the dataset caches its own images (synthetic)
        return

    def cached(load: Any) -> Any:
        @functools.cache
        def thumb(index: int) -> np.ndarray:
            image = load(index)
            thumb = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            return np.ascontiguousarray(np.clip(thumb, 0.0, 1.0))  # float resizing can overshoot 1 by an ulp

        def get(index: int) -> np.ndarray:
            return thumb(int(index)).copy()

        return get

    dataset.load_source = cached(dataset.load_source)
    dataset.load_target = cached(dataset.load_target)


__all__ = ["RLModelSpec", "RLTrainSpec", "RLTrainer"]
