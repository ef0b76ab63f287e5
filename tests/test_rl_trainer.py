"""The rl trainer: reward assembly, replay buffer, recipes, a few real CPU steps, checkpoint and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from zoo.errors import InputError, ParameterError, RecipeError
from zoo.recipe import load_recipe, recipe_from_dict
from zoo.rl.replay import ThumbnailReplay
from zoo.rl.reward import EditReward

pytestmark = pytest.mark.usefixtures("one_thread")


def test_reward_is_critic_score_minus_alpha_mse_on_8bit_edits() -> None:
    reward = EditReward(alpha=100.0)
    source = torch.full((2, 3, 64, 64), 0.2)
    edited = torch.stack([torch.full((3, 64, 64), 0.3001), torch.full((3, 64, 64), 0.2)])

    def critic(x: torch.Tensor) -> torch.Tensor:  # score = mean intensity, so the 8-bit rounding is visible
        return x.mean(dim=(1, 2, 3))[:, None]

    out = reward(critic, source, edited)
    q = torch.round(torch.tensor(0.3001) * 255) / 255
    assert torch.allclose(out["adversarial"], torch.stack([q, torch.round(torch.tensor(0.2) * 255) / 255]), atol=1e-6)
    expected_pen = 100 * (q - 0.2) ** 2
    assert out["penalty"][0] == pytest.approx(float(expected_pen), rel=1e-4)
    assert torch.allclose(out["reward"], out["adversarial"] - out["penalty"])
    # precomputed scores are used as given
    out2 = reward(None, source, edited, scores=torch.tensor([[5.0], [1.0]]))
    assert out2["adversarial"].tolist() == [5.0, 1.0]
    # other registered pieces can be swapped in
    hinge_l1 = EditReward(objective="hinge", penalty="l1", alpha=2.0)
    out3 = hinge_l1(critic, source, source)
    assert torch.allclose(out3["penalty"], torch.zeros(2))
    with pytest.raises(ParameterError, match="adversarial objective"):
        EditReward(objective="mse")
    with pytest.raises(ParameterError, match="content loss"):
        EditReward(penalty="wgan_gp")


def test_replay_ring_buffer_and_state_round_trip() -> None:
    buf = ThumbnailReplay(capacity=5, size=4)
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
    other = ThumbnailReplay(capacity=5, size=4)
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.real, buf.real) and other.count == buf.count
    with pytest.raises(InputError, match="same N"):
        buf.add(torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4))
    with pytest.raises(InputError, match="empty"):
        ThumbnailReplay(4, 4).sample(1)


@pytest.mark.parametrize("name", ["rl_edit.yaml", "rl_edit_demo.yaml"])
def test_shipped_rl_recipes_validate(name: str) -> None:
    recipe = load_recipe(ROOT / "recipes" / name)
    assert recipe.train.trainer == "rl" and recipe.model.generator["name"] == "rl_editor"
    assert recipe.train.batch_size == 20 and recipe.model.reward.alpha == 100.0


def _raw(tmp_path: Path, **train) -> dict:
    return {
        "name": "rl_tiny",
        "seed": 0,
        "data": {"name": "synthetic", "size": 8, "height": 40, "width": 56, "resize": 64},
        "model": {"generator": {"name": "rl_editor"}, "algorithm": {"name": "a2c", "lr": 1e-3}},
        "train": {
            "trainer": "rl",
            "steps": 3,
            "batch_size": 4,
            "critic_steps": 2,
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
            trainer._critic_before = [p.detach().clone() for p in trainer.module("critic").parameters()]
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
        "critic/real",
        "critic/edited",
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
    params = list(trainer.module("critic").parameters())
    moved = [not torch.equal(a, b) for a, b in zip(trainer._critic_before, params, strict=True)]
    assert all(m for m, p in zip(moved, params, strict=True) if p.dim() > 1)
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    replay = state["extra"]["replay"]
    assert replay["count"] == 12 and replay["real"].shape == (6, 3, 64, 64) and replay["real"].dtype == torch.uint8
    assert set(state["optimizers"]) == {"policy", "critic"}


def test_resume_continues_like_an_uninterrupted_run(tmp_path) -> None:
    from zoo.checkpoint_io import load_generator
    from zoo.train.rl import RLTrainer

    full = RLTrainer(recipe_from_dict(_raw(tmp_path / "a", steps=4, checkpoint_every=2)), quiet=True).fit()
    part = RLTrainer(recipe_from_dict(_raw(tmp_path / "b", steps=2, checkpoint_every=2)), quiet=True).fit()
    resumed = RLTrainer(recipe_from_dict(_raw(tmp_path / "b", steps=4, checkpoint_every=2)), quiet=True).fit(
        resume=part.checkpoint
    )
    assert resumed.steps == 4
    for key in ("reward/mean", "critic/loss", "policy/value_loss"):
        assert resumed.metrics[key] == pytest.approx(full.metrics[key], rel=1e-4, abs=1e-5), key
    gen_a, _ = load_generator(checkpoint=full.checkpoint)
    gen_b, _ = load_generator(checkpoint=resumed.checkpoint)
    for (k, a), b in zip(gen_a.state_dict().items(), gen_b.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), k
    x = torch.rand(1, 3, 100, 80)
    with torch.no_grad():
        out = gen_a(x)
    assert out["image"].shape == x.shape and not gen_a.training
