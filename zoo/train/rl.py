"""The ``rl`` trainer: RL-controlled editing (Kosugi & Yamasaki, AAAI 2020), batched and synchronous.

One step (= one agent update) on a batch of ``N`` source thumbnails and ``N`` real (target-domain) thumbnails::

    levels ~ pi(. | source)                      (BatchNorm in train mode, one sample per slider)
    edited = q8(software(source, levels))       (the edit, rounded to 8 bits as the reference saves it)
    R = objective.reward(D(edited)) - alpha * penalty(source, edited)      (the critic before this step's update)
    critic steps: 1 on (real, edited), then critic_steps - 1 on replay samples (last 1000 real and edited)
    agent update: the algorithm (a2c / ppo / reinforce) on (source, levels, R)

Episodes are one step long, so there is no environment loop: a batch of photos is a batch of episodes.
Checkpoints hold the policy, the critic, both optimisers, the algorithm's own state and the replay buffer.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from zoo.errors import ParameterError, RecipeError
from zoo.recipe import Component
from zoo.registry import create, register
from zoo.specs import CommonTrainSpec, StrictModel
from zoo.train.base import Trainer

PAPER = "Kosugi & Yamasaki, AAAI 2020"


class RewardSpec(StrictModel):
    """``R = objective.reward(D(edited)) - alpha * penalty.per_image(source, edited)``."""

    objective: Component("loss") = Field(default_factory=lambda: {"name": "wgan_gp"})
    penalty: Component("loss") = Field(default_factory=lambda: {"name": "mse"})
    alpha: float = Field(100.0, ge=0, description="weight of the content penalty (100 in the paper)")
    quantize: bool = Field(True, description="round edited thumbnails to 8 bits before the critic sees them")


class RLModelSpec(StrictModel):
    """The ``model`` section of an RL-editing recipe."""

    generator: Component("generator") = Field(
        default_factory=lambda: {"name": "rl_editor"},
        description="the editor: rl_editor {policy, software, levels, weights}",
    )
    critic: Component("discriminator") = Field(default_factory=lambda: {"name": "kosugi_critic"})
    algorithm: Component("algorithm") = Field(default_factory=lambda: {"name": "a2c"})
    reward: RewardSpec = Field(default_factory=RewardSpec)


class RLTrainSpec(CommonTrainSpec):
    """The ``train`` section of the ``rl`` trainer (plus the keys every trainer shares)."""

    batch_size: int = Field(20, ge=1, description="episodes (photos) per agent update (20 in the paper)")
    critic_steps: int = Field(5, ge=0, description="critic updates per agent update: 1 on the batch, the rest replayed")
    replay_size: int = Field(1000, ge=1, description="real and edited thumbnails kept for the critic's extra steps")
    critic_lr: float = Field(1e-4, gt=0)
    critic_betas: tuple[float, float] = (0.5, 0.999)
    cache_thumbnails: bool = Field(
        True, description="decode each file once and keep its thumbnail (when data.resize is the thumbnail size)"
    )


@register("trainer", "rl", paper=PAPER, tags=("rl_edit",))
class RLTrainer(Trainer):
    """RL-controlled editing: an agent sets the sliders of editing software, a WGAN-GP critic scores the edit.

    Batched, synchronous one-step episodes; any registered algorithm (a2c, ppo, reinforce), critic, adversarial
    objective and content penalty. Metrics: the reward and its two parts, critic scores on real and edited
    thumbnails, critic loss and gradient penalty, policy entropy and losses, and the mean chosen value of every
    slider; sample grids (source | edited) every ``train.sample_every`` updates.
    """

    ModelSpec = RLModelSpec
    TrainSpec = RLTrainSpec

    # ----------------------------------------------------------------------------------------- building

    @classmethod
    def check_recipe(cls, recipe: Any) -> None:
        gen = recipe.model.generator
        if gen.get("name") != "rl_editor":
            return  # another slider generator: its own constructor checks K and L
        policy = gen.get("policy")
        if isinstance(policy, dict) and ("num_params" in policy or "levels" in policy):
            software = create("software", gen.get("software", "lightroom_basic"))
            want = {"num_params": software.K, "levels": gen.get("levels", 33)}
            for key, value in want.items():
                if key in policy and policy[key] != value:
                    raise RecipeError(
                        f"model.generator.policy.{key} is {policy[key]}, but the software "
                        f"{software.software_name!r} has K = {software.K} sliders and model.generator.levels is "
                        f"{want['levels']}: the policy must output {key} = {value}. Remove the key (it is set "
                        "from the software and levels) or make them agree."
                    )

    def build(self) -> None:
        from zoo.rl.replay import ThumbnailReplay
        from zoo.rl.reward import EditReward

        cfg: RLTrainSpec = self.cfg  # type: ignore[assignment]
        editor = create("generator", self.model_cfg.generator, where=self.recipe.where("model.generator"))
        for attr in ("policy", "software", "levels", "thumbnail_size"):
            if not hasattr(editor, attr):
                raise ParameterError(
                    f"{self.recipe.where('model.generator')}: the rl trainer needs a slider generator with a policy "
                    f"and a software (rl_editor); {type(editor).__name__} has no {attr!r}."
                )
        self.editor = editor.to(self.device)
        self.software = self.editor.software
        self.size = int(self.editor.thumbnail_size)
        self.algorithm = create("algorithm", self.model_cfg.algorithm, where=self.recipe.where("model.algorithm"))
        # REINFORCE leaves the value head out of the loss: DDP must be told
        # channels_last makes these small convolutions 2-4x faster on the CPU too (the base uses it on CUDA)
        self._cl = self.device.type == "cpu" or self.channels_last
        if self._cl:
            self.editor.policy.to(memory_format=torch.channels_last)
        critic = create("discriminator", self.model_cfg.critic, where=self.recipe.where("model.critic"))
        if self._cl:
            critic = critic.to(memory_format=torch.channels_last)
        self.policy = self.add_module(
            "policy", self.editor.policy, find_unused_parameters=not getattr(self.algorithm, "uses_value", True)
        )
        self.critic = self.add_module("critic", critic)
        r = self.model_cfg.reward
        self.reward = EditReward(r.objective, r.penalty, alpha=r.alpha, quantize=r.quantize).to(self.device)
        self.algorithm.bind(self.policy)
        self.add_optimizer("policy", self.algorithm.optimizer)
        self.opt_critic = self.add_optimizer(
            "critic",
            torch.optim.Adam(self.module("critic").parameters(), lr=cfg.critic_lr, betas=tuple(cfg.critic_betas)),
        )
        self.replay = ThumbnailReplay(cfg.replay_size, self.size)
        if cfg.cache_thumbnails:
            _cache_thumbnails(self.dataset, self.recipe.data, self.size, self.log)

    @property
    def generator(self) -> nn.Module:
        return self.editor

    # ----------------------------------------------------------------------------------------- one update

    def _thumbs(self, images: Tensor) -> Tensor:
        from zoo.rl.editor import area_thumbnail

        return area_thumbnail(images.float().clamp(0, 1), self.size, quantize=True)

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        from zoo.rl.common import Rollout, act
        from zoo.rl.editor import quantize_8bit

        cfg: RLTrainSpec = self.cfg  # type: ignore[assignment]
        source = self._thumbs(batch["source"])
        real = self._thumbs(batch["target"])
        self.editor.train()

        # act: one sampled level per slider, the edit at thumbnail size
        actions, log_probs, values, _ = act(self.policy, self._fmt(source))
        params = self.software.levels_to_params(actions, self.editor.levels).to(source)
        with torch.no_grad():
            edited = quantize_8bit(self.software.apply(source, params))
        edited = self._fmt(edited)
        real = self._fmt(real)

        # critic: the current batch first (its scores of the edits, taken before the update, are the
        # reward's: the critic that the episode met), then thumbnails replayed from the buffer
        self.replay.add(real, edited)
        critic_stats, scores = [], None
        if cfg.critic_steps > 0:
            first, scores = self._critic_step(real, edited)
            critic_stats.append(first)
        for _ in range(cfg.critic_steps - 1):
            r, f = self.replay.sample(real.shape[0], self.device)
            critic_stats.append(self._critic_step(self._fmt(r), self._fmt(f))[0])
        parts = self.reward(self.module("critic"), source, edited, scores=scores)

        # agent
        stats = self.algorithm.update(Rollout(self._fmt(source), actions, parts["reward"], log_probs, values))

        out: dict[str, float] = {
            "reward/mean": float(parts["reward"].mean()),
            "reward/adversarial": float(parts["adversarial"].mean()),
            "reward/penalty": float(parts["penalty"].mean()),
            "critic/edited": float(parts["scores"].mean()),
            "policy/value": float(values.mean()),
        }
        if critic_stats:
            first = critic_stats[0]
            out["critic/real"] = first["real"]
            out["critic/loss"] = sum(s["loss"] for s in critic_stats) / len(critic_stats)
            out["critic/gp"] = sum(s["gp"] for s in critic_stats) / len(critic_stats)
            out["critic/wasserstein"] = first["real"] - first["fake"]
        for key, value in stats.items():
            out[f"policy/{key}"] = float(value)
        for name, value in zip(self.software.names, params.mean(0).tolist(), strict=True):
            out[f"slider/{name}"] = value
        return out

    def _fmt(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self._cl else x

    def _critic_step(self, real: Tensor, fake: Tensor) -> tuple[dict[str, float], Tensor]:
        """One WGAN-GP critic update; returns its statistics and the critic's pre-update scores of ``fake``."""
        n = real.shape[0]
        scores = self.critic(torch.cat([real, fake]))  # one forward: no BatchNorm, so the same as two
        real_s, fake_s = scores[:n], scores[n:]
        loss = self.reward.objective.critic_loss(real_s, fake_s)
        # the penalty goes through the unwrapped critic (DDP does not support double backward); its gradients
        # still land in the same backward pass, so DDP averages them with the rest
        gp = self.reward.objective.penalty(self.module("critic"), real, fake)
        self.opt_critic.zero_grad(set_to_none=True)
        (loss + gp).backward()
        self.opt_critic.step()
        stats = {
            "loss": float(loss.detach()) + float(gp.detach()),
            "gp": float(gp.detach()),
            "real": float(real_s.detach().mean()),
            "fake": float(fake_s.detach().mean()),
        }
        return stats, fake_s.detach()

    # ----------------------------------------------------------------------------------------- state & samples

    def extra_state(self) -> dict[str, Any]:
        algo = {k: v for k, v in self.algorithm.state_dict().items() if k != "optimizer"}  # the base saves optimisers
        return {"replay": self.replay.state_dict(), "algorithm": algo}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "replay" in state:
            self.replay.load_state_dict(state["replay"])
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


__all__ = ["RLModelSpec", "RLTrainSpec", "RLTrainer", "RewardSpec"]
