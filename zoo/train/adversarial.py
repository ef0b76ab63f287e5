"""The one adversarial core that every trainer shares: the discriminator side, content terms, and the checks.

Whichever method a recipe comes from, its model is one layout (:class:`zoo.specs.AdversarialModelSpec`): a
generator, named discriminators (each a network, an objective and a weight) and weighted content losses. What the
trainers share is here:

- :class:`DiscriminatorSide`: building the networks, their objectives and optimisers; drawing local-patch windows
  once per step (shared by the generated, real and source images); the generator's adversarial terms (a
  differentiable loss for backpropagation, or a per-image reward for a policy); and the discriminator updates
  (``train.d_steps``: the first on the current batch, the others on replayed images or the same batch, gradient
  penalties through the unwrapped networks);
- :class:`ContentTerms`: the weighted content losses, as one scalar or per image, optionally on the patches;
- :func:`check_adversarial_recipe`: the contract checks ``zoo recipe check`` runs before any tensor exists.

The trainers differ only in how the generator learns from the same scores: ``gan`` by backpropagation
(:mod:`zoo.train.gan`), ``rl`` by policy gradient with the reward
``sum_i w_i * objective_i.reward(D_i(edited), D_i(real)) - sum_j w_j * loss_j.per_image(source, edited)``
(:mod:`zoo.train.rl`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from zoo.contracts import (
    AdversarialContract,
    ContentLossContract,
    DiscriminatorContract,
    GeneratorContract,
    PatchDiscriminator,
    contract_of,
)
from zoo.errors import RecipeError, ZooError
from zoo.registry import create, entries

if TYPE_CHECKING:
    from zoo.recipe import Recipe
    from zoo.specs import AdversarialModelSpec, AdversarialTrainSpec
    from zoo.train.base import Trainer

__all__ = ["ContentTerms", "DiscriminatorSide", "check_adversarial_recipe", "old_rl_layout_message"]

MAX_REPLAY_BYTES = 4 * 1024**3  # a replay buffer larger than this is almost surely a recipe mistake


# ----------------------------------------------------------------------------------------------- checks


def old_rl_layout_message(source: str, model: Mapping[str, Any], train: Mapping[str, Any]) -> str | None:
    """A sentence converting a recipe written in the old RL layout (``model.critic`` / ``model.reward``), or None."""
    old_model = [k for k in ("critic", "reward") if k in model]
    old_train = [k for k in ("critic_steps", "critic_lr", "critic_betas") if k in train]
    if not old_model and not old_train:
        return None
    reward = model.get("reward") or {}
    critic = model.get("critic") or {"name": "kosugi_critic"}
    objective = reward.get("objective") or {"name": "wgan_gp"}
    penalty = reward.get("penalty") or {"name": "mse"}
    alpha = reward.get("alpha", 100.0)
    parts = [
        "model.discriminators: {critic: {network: "
        + _inline(critic)
        + ", objective: "
        + _inline(objective)
        + ", weight: 1.0}}",
        f"model.losses: {{penalty: {{loss: {_inline(penalty)}, weight: {alpha}}}}}",
    ]
    if "quantize" in reward:
        parts.append(f"train.quantize: {str(bool(reward['quantize'])).lower()}")
    renames = {"critic_steps": "d_steps", "critic_lr": "lr_d", "critic_betas": "betas_d"}
    parts += [f"train.{renames[k]}: {train[k]}" for k in old_train]
    keys = ", ".join([f"model.{k}" for k in old_model] + [f"train.{k}" for k in old_train])
    return (
        f"{source}: {keys} belong to the old RL-editing layout. Every adversarial recipe now describes its model as "
        "generator + discriminators + losses (+ algorithm); convert with: " + "; ".join(parts) + ". The paper's "
        "alpha is the weight of the MSE content term."
    )


def _inline(block: Any) -> str:
    if isinstance(block, str):
        return f"{{name: {block}}}"
    if isinstance(block, Mapping):
        return "{" + ", ".join(f"{k}: {_inline(v) if isinstance(v, Mapping) else v}" for k, v in block.items()) + "}"
    return str(block)


def _adversarial_names() -> list[str]:
    return sorted(e.name for e in entries("loss") if "adversarial" in e.tags)


def _data_size(recipe: Recipe) -> tuple[tuple[int, int] | None, str]:
    """The ``(H, W)`` of the images the dataset yields and the recipe key that sets it."""
    data = recipe.data
    try:
        size = contract_of("dataset", data).image_size
    except ZooError:
        return None, "data"
    if data.get("resize"):
        key = "data.resize"
    elif data.get("crop_size"):
        key = "data.crop_size"
    else:
        key = "data.height x data.width"
    return size, key


def _contract(kind: str, block: Mapping[str, Any], where: str) -> Any:
    """A block's declared contract; a contract that refuses its own parameters becomes a sentence at ``where``."""
    try:
        return contract_of(kind, block)
    except ZooError as exc:
        raise RecipeError(f"{where}: {exc}") from None


def _describe(size: tuple[int, int]) -> str:
    return f"{size[0]} x {size[1]}"


def check_adversarial_recipe(recipe: Recipe, *, learning: str, trainer: str) -> None:
    """Refuse a combination of components that cannot work, before anything is built.

    Args:
        recipe: the validated recipe (its ``model`` is an :class:`~zoo.specs.AdversarialModelSpec`).
        learning: how this trainer's generator learns (``"backprop"`` or ``"policy"``).
        trainer: the trainer's registered name (for the messages).

    Raises:
        RecipeError: one sentence naming the components, the recipe keys and what would fit.
    """
    model: AdversarialModelSpec = recipe.model
    where = recipe.where
    gen_name = model.generator["name"]
    gen: GeneratorContract = _contract("generator", model.generator, where("model.generator"))
    if gen.learning != learning:
        raise RecipeError(where("model.generator") + ": " + _learning_message(gen_name, gen, learning, trainer))
    if learning == "policy" and model.algorithm is None:
        names = ", ".join(e.name for e in entries("algorithm"))
        raise RecipeError(
            f"{where('model.algorithm')}: generator {gen_name!r} is a policy over discrete slider levels, so the "
            f"{trainer} trainer needs an RL algorithm to train it; add model.algorithm: {{name: a2c}} ({names})."
        )
    if learning != "policy" and model.algorithm is not None:
        raise RecipeError(
            f"{where('model.algorithm')}: {model.algorithm['name']!r} is an RL algorithm, but generator "
            f"{gen_name!r} learns by backpropagation under the {trainer} trainer; remove model.algorithm."
        )
    size, size_key = _data_size(recipe)
    if size is not None and min(size) < gen.min_size:
        raise RecipeError(
            f"{where('model.generator')}: {gen_name} needs images of at least {gen.min_size} x {gen.min_size} but "
            f"{size_key} gives {_describe(size)}; make {size_key} at least {gen.min_size}."
        )
    patch_names = set()
    for name, spec in model.discriminators.items():
        key = f"model.discriminators.{name}"
        net_name, obj_name = spec.network["name"], spec.objective["name"]
        net: DiscriminatorContract = _contract("discriminator", spec.network, where(key + ".network"))
        obj = _contract("loss", spec.objective, where(key + ".objective"))
        if not isinstance(obj, AdversarialContract):
            raise RecipeError(
                f"{where(key + '.objective')}: {obj_name} is a content loss, not an adversarial objective, so it "
                f"cannot turn {net_name}'s scores into a discriminator loss; use one of "
                f"{', '.join(_adversarial_names())} (and put {obj_name} under model.losses)."
            )
        if size is not None and not net.accepts(size):
            raise RecipeError(
                f"{where(key + '.network')}: {net_name} takes {net.describe_sizes()} but {size_key} gives "
                f"{_describe(size)}; {_size_fix(spec.network, key, net, size, size_key)}."
            )
        if net.scores not in obj.accepts:
            fits = ", ".join(sorted(obj.accepts))
            raise RecipeError(
                f"{where(key)}: objective {obj_name} needs {fits} scores, but {net_name} outputs {net.scores} "
                f"(e.g. it ends in a sigmoid); use a discriminator without the sigmoid, or an objective made for "
                f"{net.scores} such as lsgan."
            )
        if learning == "policy" and not obj.gives_reward:
            raise RecipeError(
                f"{where(key + '.objective')}: {obj_name} defines no per-image reward, so it cannot reward the "
                f"policy {gen_name!r}; use one of {', '.join(_adversarial_names())}."
            )
        if net.patch_size is not None:
            patch_names.add(name)
    for name, spec in model.losses.items():
        key = f"model.losses.{name}"
        loss_name = spec.loss["name"]
        loss = _contract("loss", spec.loss, where(key + ".loss"))
        if not isinstance(loss, ContentLossContract):
            raise RecipeError(
                f"{where(key + '.loss')}: {loss_name} is an adversarial objective, not a content loss; give it a "
                f"network under model.discriminators (e.g. {{{name}: {{network: {{name: patchgan_nonorm}}, "
                f"objective: {{name: {loss_name}}}}}}})."
            )
        if learning == "policy" and not loss.per_image:
            raise RecipeError(
                f"{where(key + '.loss')}: {loss_name} gives no per-image value, so it cannot be part of the reward of "
                f"policy {gen_name!r}."
            )
        if spec.patches is not None and spec.patches not in patch_names:
            have = ", ".join(sorted(patch_names)) or "none"
            raise RecipeError(
                f"{where(key + '.patches')}: {spec.patches!r} is not a local-patch discriminator of this recipe "
                f"(model.discriminators with local_patches networks: {have}); name one of them or remove patches."
            )
    cfg = recipe.train
    replay = int(getattr(cfg, "replay_size", 0) or 0)
    if replay and size is not None:
        from zoo.train.replay import ImageReplay

        need = ImageReplay.nbytes(replay, size)
        if need > MAX_REPLAY_BYTES:
            fit = max(1, MAX_REPLAY_BYTES // ImageReplay.nbytes(1, size))
            raise RecipeError(
                f"{where('train.replay_size')}: {replay} real and generated images of {_describe(size)} need "
                f"{need / 1024**3:.1f} GB; keep it at most {fit} (or 0: extra discriminator steps on the same batch)."
            )


def _size_fix(
    block: Mapping[str, Any], key: str, net: DiscriminatorContract, size: tuple[int, int], size_key: str
) -> str:
    from zoo.contracts import block_params

    _, params = block_params("discriminator", block)
    if net.input_size is None:
        return f"make {size_key} at least {net.min_size}"
    h, w = net.input_size
    if size_key == "data.height x data.width":
        crop = f"data.height: {h} and data.width: {w} (or data.resize: {h})" if h == w else f"data.height: {h}"
    else:
        crop = f"{size_key}: {h}" if h == w else f"{size_key} to fit"
    if "image_size" in params and size[0] == size[1]:
        return f"set {key}.network.image_size: {size[0]}, or {crop}"
    return f"set {crop}"


def _learning_message(name: str, gen: GeneratorContract, learning: str, trainer: str) -> str:
    if gen.learning == "none":
        return (
            f"{name} is a training-free generator (nothing to learn), so there is nothing for the {trainer} trainer "
            f"to train; run it directly, e.g. zoo enhance --generator {name}."
        )
    if gen.learning == "policy":
        return (
            f"{name} picks discrete slider levels with a policy, which backpropagation cannot train (the {trainer} "
            "trainer); use train.trainer: rl with a model.algorithm, or the differentiable slider generator "
            "edit_regressor."
        )
    return (
        f"{name} learns by backpropagation, but the {trainer} trainer trains policies over discrete slider levels "
        "(rl_editor); use train.trainer: gan for it."
    )


# ----------------------------------------------------------------------------------------------- the core


class DiscriminatorSide:
    """The discriminators of a recipe, their objectives, optimisers and updates (shared by every trainer).

    Args:
        trainer: the trainer whose :meth:`~zoo.train.base.Trainer.add_module` / ``add_optimizer`` register the
            networks (``d_<name>``) and their Adam optimisers (checkpointed, DDP-wrapped under torchrun).
        channels_last: also format the networks and their inputs channels_last (faster small convs on the CPU).
    """

    def __init__(self, trainer: Trainer, *, channels_last: bool = False) -> None:
        model: AdversarialModelSpec = trainer.model_cfg  # type: ignore[assignment]
        cfg: AdversarialTrainSpec = trainer.cfg  # type: ignore[assignment]
        self.trainer = trainer
        self.channels_last = channels_last
        self.weights: dict[str, float] = {}
        self.objectives: dict[str, nn.Module] = {}
        self.wrapped: dict[str, nn.Module] = {}
        self.plain: dict[str, nn.Module] = {}
        lr = cfg.lr_d or getattr(cfg, "lr", None) or 1e-4
        betas = tuple(cfg.betas_d or getattr(cfg, "betas", None) or (0.5, 0.999))
        for name, spec in model.discriminators.items():
            where = trainer.recipe.where(f"model.discriminators.{name}")
            self.objectives[name] = create("loss", spec.objective, where=f"{where}.objective").to(trainer.device)
            net = create("discriminator", spec.network, where=f"{where}.network")
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
            self.wrapped[name] = trainer.add_module(f"d_{name}", net)
            self.plain[name] = trainer.module(f"d_{name}")
            self.weights[name] = float(spec.weight)
            trainer.add_optimizer(
                f"d_{name}",
                torch.optim.Adam(self.plain[name].parameters(), lr=lr, betas=betas),  # type: ignore[arg-type]
            )
        self.d_steps = int(cfg.d_steps)
        self.replay: Any = None
        self._replay_size = int(cfg.replay_size)

    @property
    def names(self) -> list[str]:
        return list(self.plain)

    def _fmt(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    # ------------------------------------------------------------------------------------------- windows

    def draw_windows(self, like: Tensor) -> dict[str, Tensor | None]:
        """One draw of local-patch windows per patch discriminator, for a batch shaped like ``like``."""
        out: dict[str, Tensor | None] = {}
        for name, net in self.plain.items():
            if isinstance(net, PatchDiscriminator):
                out[name] = net.sample_windows(like.shape[0], like.shape[-2], like.shape[-1], like.device)
            else:
                out[name] = None
        return out

    def crop(self, name: str, images: Tensor, windows: Tensor) -> Tensor:
        """The patches of ``images`` at a patch discriminator's ``windows``."""
        net = self.plain[name]
        if not isinstance(net, PatchDiscriminator):
            raise RecipeError(f"discriminator {name!r} cuts no local patches (use local_patches).")
        return net.crop(images, windows)

    @staticmethod
    def _call(net: nn.Module, x: Tensor, windows: Tensor | None) -> Tensor:
        return net(x) if windows is None else net(x, windows=windows)

    # ------------------------------------------------------------------------------------------- generator side

    def generator_loss(
        self, fake: Tensor, real: Tensor, windows: Mapping[str, Tensor | None], autocast: Any
    ) -> tuple[Tensor, dict[str, float]]:
        """``sum_i w_i * objective_i.generator_loss(D_i(fake), D_i(real))``, differentiable w.r.t. ``fake``.

        The discriminators are frozen and called unwrapped (no DDP sync for gradients they do not need).
        """
        for net in self.plain.values():
            net.requires_grad_(False)
        total = fake.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        try:
            for name, net in self.plain.items():
                objective, w = self.objectives[name], windows.get(name)
                with autocast():
                    fake_scores = self._call(net, self._fmt(fake), w)
                    real_scores = None
                    if objective.needs_real_for_generator:
                        with torch.no_grad():
                            real_scores = self._call(net, self._fmt(real), w).float()
                term = objective.generator_loss(fake_scores.float(), real_scores)
                total = total + self.weights[name] * term
                parts[f"loss/g_{name}"] = float(term.detach())
        finally:
            for net in self.plain.values():
                net.requires_grad_(True)
        return total, parts

    def reward(self, scores: Mapping[str, tuple[Tensor, Tensor]]) -> tuple[Tensor, dict[str, Tensor]]:
        """``sum_i w_i * objective_i.reward(fake_scores_i, real_scores_i)`` per image, from scores already taken.

        Args:
            scores: ``{name: (real_scores, fake_scores)}`` of every discriminator (e.g. what
                :meth:`update` returns: the scores of the networks the episode met, before their update).

        Returns:
            ``(N,)`` total and ``{name: (N,)}`` per discriminator (unweighted).
        """
        parts = {}
        total = None
        for name in self.plain:
            real_s, fake_s = scores[name]
            r = self.objectives[name].reward(fake_s.detach().float(), real_s.detach().float()).detach()
            parts[name] = r
            total = self.weights[name] * r if total is None else total + self.weights[name] * r
        assert total is not None  # at least one discriminator (the spec requires it)
        return total, parts

    @torch.no_grad()
    def score(
        self, real: Tensor, fake: Tensor, windows: Mapping[str, Tensor | None]
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """Every discriminator's scores of ``real`` and ``fake`` without updating it."""
        out = {}
        for name, net in self.plain.items():
            w = windows.get(name)
            out[name] = (self._call(net, self._fmt(real), w).float(), self._call(net, self._fmt(fake), w).float())
        return out

    # ------------------------------------------------------------------------------------------- discriminator side

    def update(
        self, real: Tensor, fake: Tensor, windows: Mapping[str, Tensor | None], autocast: Any
    ) -> tuple[dict[str, float], dict[str, tuple[Tensor, Tensor]]]:
        """``train.d_steps`` updates of every discriminator; the first on this batch, the others replayed.

        With ``train.replay_size > 0`` the batch is added to the replay buffer first and the extra steps draw
        real and generated images from it (with fresh windows); otherwise they reuse the batch.

        Returns:
            Metrics, and ``{name: (real_scores, fake_scores)}`` of the first step taken before its update (the
            networks this batch met; the RL reward uses them and so saves a forward pass).
        """
        fake = fake.detach()
        if self._replay_size > 0:
            if self.replay is None:
                from zoo.train.replay import ImageReplay

                self.replay = ImageReplay(self._replay_size, (real.shape[-2], real.shape[-1]))
            self.replay.add(real, fake)
        stats: dict[str, float] = {}
        first: dict[str, tuple[Tensor, Tensor]] = {}
        if self.d_steps == 0:
            return stats, self.score(real, fake, windows)
        losses = {name: [] for name in self.plain}
        gps = {name: [] for name in self.plain}
        for step in range(self.d_steps):
            if step == 0:
                r, f, w = real, fake, windows
            elif self.replay is not None:
                r, f = self.replay.sample(real.shape[0], real.device)
                w = self.draw_windows(r)
            else:
                r, f, w = real, fake, windows
            for name in self.plain:
                loss, gp, real_s, fake_s = self._step(name, self._fmt(r), self._fmt(f), w.get(name), autocast)
                losses[name].append(loss)
                gps[name].append(gp)
                if step == 0:
                    first[name] = (real_s, fake_s)
        for name in self.plain:
            stats[f"loss/d_{name}"] = sum(losses[name]) / len(losses[name])
            if any(gps[name]):
                stats[f"loss/gp_{name}"] = sum(gps[name]) / len(gps[name])
            stats[f"score/{name}_real"] = float(first[name][0].mean())
            stats[f"score/{name}_fake"] = float(first[name][1].mean())
        return stats, first

    def _step(
        self, name: str, real: Tensor, fake: Tensor, windows: Tensor | None, autocast: Any
    ) -> tuple[float, float, Tensor, Tensor]:
        net, plain, objective = self.wrapped[name], self.plain[name], self.objectives[name]
        n = real.shape[0]
        both = torch.cat([real, fake])  # one forward (no discriminator here normalises over the batch)
        both_windows = None if windows is None else torch.cat([windows, windows], dim=1)
        with autocast():
            scores = self._call(net, self._fmt(both), both_windows).float()
        real_s, fake_s = scores[:n], scores[n:]
        loss = objective.critic_loss(real_s, fake_s)
        # double backward does not go through DDP: the penalty uses the unwrapped network, and its gradients land
        # in the same backward pass, so DDP still averages them with the rest
        gp = objective.penalty(lambda x, d=plain, w=windows: self._call(d, x, w).float(), real, fake)
        opt = self.trainer.optimizers[f"d_{name}"]
        opt.zero_grad(set_to_none=True)
        (loss + gp).backward()
        opt.step()
        return float(loss.detach()) + float(gp.detach()), float(gp.detach()), real_s.detach(), fake_s.detach()

    # ------------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        return {"replay": self.replay.state_dict() if self.replay is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state.get("replay")
        if saved:
            from zoo.train.replay import ImageReplay

            self.replay = ImageReplay.from_state(self._replay_size, saved)


class ContentTerms:
    """The recipe's weighted content losses between the (undarkened) source and the output."""

    def __init__(self, trainer: Trainer, side: DiscriminatorSide) -> None:
        model: AdversarialModelSpec = trainer.model_cfg  # type: ignore[assignment]
        self.side = side
        self.losses: dict[str, nn.Module] = {}
        self.weights: dict[str, float] = {}
        self.patches: dict[str, str | None] = {}
        for name, spec in model.losses.items():
            where = trainer.recipe.where(f"model.losses.{name}")
            loss = create("loss", spec.loss, where=f"{where}.loss")
            ready = getattr(type(loss), "check_ready", None)
            if ready is not None:
                loss.check_ready()  # e.g. missing pretrained weights: stop here, before the first step
            self.losses[name] = loss.to(trainer.device)
            self.weights[name] = float(spec.weight)
            self.patches[name] = spec.patches

    def _value(self, name: str, source: Tensor, output: Tensor, windows: Mapping[str, Tensor | None], per_image: bool):
        loss = self.losses[name]
        fn = loss.per_image if per_image else loss
        value = fn(source, output).float()
        patch = self.patches[name]
        if patch is not None:
            w = windows[patch]
            n = source.shape[0]
            cut_s, cut_o = self.side.crop(patch, source, w), self.side.crop(patch, output, w)
            if per_image:  # the crops are patch-major: (P * N); average each image's patches
                value = value + fn(cut_s, cut_o).float().reshape(-1, n).mean(0)
            else:
                value = value + fn(cut_s, cut_o).float()
        return value

    def total(self, source: Tensor, output: Tensor, windows: Mapping[str, Tensor | None]) -> tuple[Tensor, dict]:
        """``sum_j w_j * loss_j(source, output)`` (differentiable) and the unweighted terms."""
        total = output.new_zeros((), dtype=torch.float32)
        parts = {}
        for name in self.losses:
            value = self._value(name, source, output, windows, per_image=False)
            total = total + self.weights[name] * value
            parts[f"loss/{name}"] = float(value.detach())
        return total, parts

    @torch.no_grad()
    def per_image(
        self, source: Tensor, output: Tensor, windows: Mapping[str, Tensor | None]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``sum_j w_j * loss_j.per_image(source, output)``, ``(N,)``, and the unweighted per-image terms."""
        total = output.new_zeros(output.shape[0], dtype=torch.float32)
        parts = {}
        for name in self.losses:
            value = self._value(name, source, output, windows, per_image=True)
            total = total + self.weights[name] * value
            parts[name] = value
        return total, parts
