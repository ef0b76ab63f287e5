"""The rl trainer: reward assembly, replay buffer, recipes, a few real CPU steps, checkpoint and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from zoo.errors import InputError, RecipeError
from zoo.recipe import load_recipe, recipe_from_dict
from zoo.train.replay import ImageReplay

pytestmark = pytest.mark.usefixtures("one_thread")


class _MeanCritic(torch.nn.Module):
    """score = mean intensity (so the 8-bit rounding of the edits is visible in the scores)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3))[:, None] + self.bias


def test_reward_is_weighted_rewards_minus_weighted_penalties(tmp_path) -> None:
    """R = sum_i w_i objective_i.reward(D_i(edited), D_i(real)) - sum_j w_j loss_j.per_image(source, edited)."""
    from zoo.train.rl import RLTrainer

    raw = _raw(tmp_path)
    other = {"network": {"name": "kosugi_critic"}, "objective": "hinge", "weight": 0.5}
    raw["model"]["discriminators"]["other"] = other
    raw["model"]["losses"]["l1"] = {"loss": {"name": "l1"}, "weight": 2.0}
    trainer = RLTrainer(recipe_from_dict(raw), quiet=True)
    trainer.build()
    source = torch.full((2, 3, 64, 64), 0.2)
    edited = torch.stack([torch.full((3, 64, 64), 0.3), torch.full((3, 64, 64), 0.2)])
    real = torch.full((2, 3, 64, 64), 0.5)
    critic = _MeanCritic()
    scores = {name: (critic(real).detach(), critic(edited).detach()) for name in ("critic", "other")}
    adversarial, parts = trainer.side.reward(scores)
    # wgan_gp: C(f) - mean C(r) = edited mean - 0.5; hinge: C(f) = edited mean
    assert torch.allclose(parts["critic"], torch.tensor([0.3 - 0.5, 0.2 - 0.5]), atol=1e-6)
    assert torch.allclose(parts["other"], torch.tensor([0.3, 0.2]), atol=1e-6)
    assert torch.allclose(adversarial, 1.0 * parts["critic"] + 0.5 * parts["other"], atol=1e-6)
    penalty, pen = trainer.content.per_image(source, edited, trainer.side.draw_windows(source))
    assert torch.allclose(pen["penalty"], torch.tensor([0.01, 0.0]), atol=1e-6)  # mse
    assert torch.allclose(pen["l1"], torch.tensor([0.1, 0.0]), atol=1e-6)
    assert torch.allclose(penalty, 100.0 * pen["penalty"] + 2.0 * pen["l1"], atol=1e-5)
    trainer._release()


def test_replay_ring_buffer_and_state_round_trip() -> None:
    buf = ImageReplay(capacity=5, size=4)
    for i in range(3):
        real = torch.full((2, 3, 4, 4), i / 10)
        buf.add(real, 1 - real)
    assert len(buf) == 5 and buf.count == 6
    # slot 0 was overwritten by the last batch (values 0.2), slots 1..4 hold batches 0 (slot 1), 1, 1, 2
    stored = sorted({round(float(v) / 255, 2) for v in buf.real[:, 0, 0, 0]})
    assert stored == [0.0, 0.1, 0.2]
    torch.manual_seed(0)
    r, f = buf.sample(50)
    assert r.shape == (50, 3, 4, 4) and r.dtype == torch.float32
    assert set(torch.round(r[:, 0, 0, 0] * 10).tolist()) <= {0.0, 1.0, 2.0}
    other = ImageReplay(capacity=5, size=4)
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.real, buf.real) and other.count == buf.count
    with pytest.raises(InputError, match="same N"):
        buf.add(torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4))
    with pytest.raises(InputError, match="empty"):
        ImageReplay(4, 4).sample(1)
    with pytest.raises(InputError, match="saved images"):
        ImageReplay(5, (4, 6)).load_state_dict(buf.state_dict())


@pytest.mark.parametrize("name", ["rl_edit.yaml", "rl_edit_demo.yaml"])
def test_shipped_rl_recipes_validate(name: str) -> None:
    recipe = load_recipe(ROOT / "recipes" / name)
    assert recipe.train.trainer == "rl" and recipe.model.generator["name"] == "rl_editor"
    assert recipe.train.batch_size == 20 and recipe.model.losses["penalty"].weight == 100.0  # the paper's alpha
    critic = recipe.model.discriminators["critic"]
    assert critic.network["name"] == "kosugi_critic" and critic.objective["name"] == "wgan_gp"


def _raw(tmp_path: Path, **train) -> dict:
    return {
        "name": "rl_tiny",
        "seed": 0,
        "data": {"name": "synthetic", "size": 8, "height": 40, "width": 56, "resize": 64},
        "model": {
            "generator": {"name": "rl_editor"},
            "discriminators": {"critic": {"network": {"name": "kosugi_critic"}, "objective": {"name": "wgan_gp"}}},
            "losses": {"penalty": {"loss": {"name": "mse"}, "weight": 100.0}},
            "algorithm": {"name": "a2c", "lr": 1e-3},
        },
        "train": {
            "trainer": "rl",
            "steps": 3,
            "batch_size": 4,
            "d_steps": 2,
            "replay_size": 6,
            "checkpoint_every": 3,
            "log_every": 1,
            "sample_every": 100,
            "samples": 2,
            "out_dir": str(tmp_path / "runs"),
            "device": "cpu",
            **train,
        },
        "tracking": {"enabled": False},
    }


def test_policy_level_mismatch_is_a_recipe_error(tmp_path) -> None:
    raw = _raw(tmp_path)
    raw["model"]["generator"]["policy"] = {"name": "kosugi_actor_critic", "levels": 17}
    with pytest.raises(RecipeError, match="levels"):
        recipe_from_dict(raw)
    raw["model"]["generator"]["policy"] = {"name": "kosugi_actor_critic", "num_params": 10}
    with pytest.raises(RecipeError, match="K = 12"):
        recipe_from_dict(raw)


@pytest.mark.parametrize("algorithm", ["a2c", "ppo", "reinforce"])
def test_a_few_cpu_steps_train_every_part(tmp_path, algorithm: str) -> None:
    from zoo.train.rl import RLTrainer

    raw = _raw(tmp_path)
    raw["model"]["algorithm"] = {"name": algorithm, "lr": 1e-3}
    recipe = recipe_from_dict(raw)
    trainer = RLTrainer(recipe, quiet=True)
    seen: list[dict] = []
    step = trainer.train_step

    def spy(batch):
        if not seen:
            trainer._before = {k: v.detach().clone() for k, v in trainer.editor.state_dict().items()}
            trainer._critic_before = [p.detach().clone() for p in trainer.module("d_critic").parameters()]
        out = step(batch)
        seen.append(out)
        return out

    trainer.train_step = spy
    result = trainer.fit()
    assert result.steps == 3 and len(seen) == 3
    for metrics in seen:
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), metrics
    keys = set(seen[0])
    assert {
        "reward/mean",
        "reward/adversarial",
        "reward/penalty",
        "reward/critic",
        "score/critic_real",
        "score/critic_fake",
        "loss/d_critic",
        "loss/gp_critic",
        "penalty/penalty",
        "policy/entropy",
        "slider/exposure",
        "slider/saturation",
    } <= keys
    assert ("policy/value_loss" in keys) == (algorithm != "reinforce")
    m = seen[-1]
    assert m["reward/mean"] == pytest.approx(m["reward/adversarial"] - m["reward/penalty"], abs=1e-4)
    assert 0 < m["policy/entropy"] <= 12 * torch.log(torch.tensor(33.0)).item() + 1e-3
    after = trainer.editor.state_dict()
    assert any(not torch.equal(trainer._before[k], after[k]) for k in after if "policy" in k)
    # every critic weight moves (the last bias cannot: WGAN's loss and penalty do not depend on it)
    params = list(trainer.module("d_critic").parameters())
    moved = [not torch.equal(a, b) for a, b in zip(trainer._critic_before, params, strict=True)]
    assert all(m for m, p in zip(moved, params, strict=True) if p.dim() > 1)
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    replay = state["extra"]["discriminators"]["replay"]
    assert replay["count"] == 12 and replay["real"].shape == (6, 3, 64, 64) and replay["real"].dtype == torch.uint8
    assert set(state["optimizers"]) == {"policy", "d_critic"}


def test_resume_continues_like_an_uninterrupted_run(tmp_path) -> None:
    from zoo.checkpoint_io import load_generator
    from zoo.train.rl import RLTrainer

    full = RLTrainer(recipe_from_dict(_raw(tmp_path / "a", steps=4, checkpoint_every=2)), quiet=True).fit()
    part = RLTrainer(recipe_from_dict(_raw(tmp_path / "b", steps=2, checkpoint_every=2)), quiet=True).fit()
    resumed = RLTrainer(recipe_from_dict(_raw(tmp_path / "b", steps=4, checkpoint_every=2)), quiet=True).fit(
        resume=part.checkpoint
    )
    assert resumed.steps == 4
    for key in ("reward/mean", "loss/d_critic", "policy/value_loss"):
        assert resumed.metrics[key] == pytest.approx(full.metrics[key], rel=1e-4, abs=1e-5), key
    gen_a, _ = load_generator(checkpoint=full.checkpoint)
    gen_b, _ = load_generator(checkpoint=resumed.checkpoint)
    for (k, a), b in zip(gen_a.state_dict().items(), gen_b.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), k
    x = torch.rand(1, 3, 100, 80)
    with torch.no_grad():
        out = gen_a(x)
    assert out["image"].shape == x.shape and not gen_a.training
