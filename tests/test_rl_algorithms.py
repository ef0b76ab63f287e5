"""RL algorithms (a2c, ppo, reinforce) on tiny problems where the right answer is known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.registry import create
from zoo.rl.common import (
    Rollout,
    categorical_entropy,
    categorical_log_prob,
    get_action_and_value,
    select_actions,
)

ALGOS = ["a2c", "ppo", "reinforce"]


pytestmark = pytest.mark.usefixtures("one_thread")


class TablePolicy(nn.Module):
    """A state-independent policy: one learnable K x L logit table and one learnable value."""

    def __init__(self, k: int = 3, levels: int = 5) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(k, levels))
        self.value = nn.Parameter(torch.zeros(()))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = obs.shape[0]
        return self.logits.expand(n, -1, -1), self.value.expand(n)


def test_log_prob_and_entropy_match_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, 7, generator=g)
    actions = torch.randint(0, 7, (4, 3), generator=g)
    dist = torch.distributions.Categorical(logits=logits)
    assert torch.allclose(categorical_log_prob(logits, actions), dist.log_prob(actions).sum(-1), atol=1e-6)
    assert torch.allclose(categorical_entropy(logits), dist.entropy().sum(-1), atol=1e-6)
    # uniform over L levels: entropy K log L
    assert torch.allclose(categorical_entropy(torch.zeros(2, 3, 7)), torch.full((2,), 3 * torch.log(torch.tensor(7.0))))


def test_select_actions_argmax_and_sampling_frequencies() -> None:
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1]]])).expand(20000, 1, 3)
    assert (select_actions(logits, deterministic=True) == 0).all()
    a = select_actions(logits, deterministic=False, generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(a.flatten(), minlength=3).float() / a.numel()
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.015)


@pytest.mark.parametrize("name", ALGOS)
def test_bandit_correct_levels_become_most_likely(name: str) -> None:
    """Reward = number of sliders at their target level: every target must end up the argmax."""
    torch.manual_seed(0)
    target = torch.tensor([4, 0, 2])
    policy = TablePolicy()
    algo = create("algorithm", {"name": name, "lr": 0.05})
    algo.bind(policy)
    obs = torch.zeros(20, 1)
    for _ in range(150):
        with torch.no_grad():
            actions, logp, _, values, _ = get_action_and_value(policy, obs)
        rewards = (actions == target).float().sum(-1)
        algo.update(Rollout(obs, actions, rewards, logp, values))
    assert torch.equal(policy.logits.argmax(-1), target)
    probs = torch.softmax(policy.logits.detach(), -1)
    assert (probs.gather(-1, target[:, None]) > 0.5).all()
    if algo.uses_value:  # the value tracks the expected reward (<= 3)
        assert 1.5 < float(policy.value.detach()) < 3.2


def test_a2c_single_step_matches_hand_computed_gradient() -> None:
    policy = TablePolicy(k=2, levels=3)
    with torch.no_grad():
        policy.logits.copy_(torch.tensor([[0.1, 0.5, -0.2], [0.0, 0.3, 0.2]]))
        policy.value.fill_(0.4)
    algo = create("algorithm", {"name": "a2c", "lr": 0.1, "entropy_coef": 0.01, "max_grad_norm": 1e9})
    algo.bind(policy)
    obs = torch.zeros(2, 1)
    actions = torch.tensor([[0, 1], [2, 2]])
    rewards = torch.tensor([1.0, -0.5])
    # expected gradient, written out
    lg = policy.logits.detach().clone().requires_grad_(True)
    v = torch.tensor(0.4, requires_grad=True)
    logp = torch.log_softmax(lg, -1)
    lp = torch.stack([logp[0, actions[i, 0]] + logp[1, actions[i, 1]] for i in range(2)])
    ent = -(logp.exp() * logp).sum()
    adv = rewards - 0.4
    loss = -(lp * adv).mean() - 0.01 * ent + 0.5 * ((v - rewards) ** 2).mean()
    loss.backward()
    stats = algo.update(Rollout(obs, actions, rewards, lp.detach(), torch.full((2,), 0.4)))
    assert stats["value_loss"] == pytest.approx(float(0.5 * ((0.4 - rewards) ** 2).mean()), rel=1e-6)
    # first Adam step moves every parameter by -lr * sign(grad) (bias-corrected m / sqrt(v))
    expected = torch.tensor([[0.1, 0.5, -0.2], [0.0, 0.3, 0.2]]) - 0.1 * torch.sign(lg.grad)
    assert torch.allclose(policy.logits.detach(), expected, atol=1e-5)
    assert float(policy.value.detach()) == pytest.approx(0.4 - 0.1 * float(torch.sign(v.grad)), abs=1e-5)


def test_ppo_clips_the_ratio() -> None:
    """With the old log-probs far below the new ones (ratio >> 1+eps) and A > 0, the surrogate has no gradient."""
    policy = TablePolicy(k=1, levels=3)
    algo = create(
        "algorithm", {"name": "ppo", "epochs": 1, "entropy_coef": 0.0, "value_coef": 0.0, "normalize_advantage": False}
    )
    algo.bind(policy)
    obs = torch.zeros(4, 1)
    actions = torch.zeros(4, 1, dtype=torch.long)
    stats = algo.update(Rollout(obs, actions, torch.ones(4), torch.full((4,), -10.0), torch.zeros(4)))
    assert stats["clip_fraction"] == 1.0
    assert stats["grad_norm"] == 0.0
    assert torch.equal(policy.logits.detach(), torch.zeros(1, 3))


def test_reinforce_baseline_is_a_running_mean_and_round_trips() -> None:
    policy = TablePolicy(k=1, levels=3)
    algo = create("algorithm", {"name": "reinforce", "baseline_decay": 0.5})
    algo.bind(policy)
    obs = torch.zeros(2, 1)
    a = torch.zeros(2, 1, dtype=torch.long)
    s1 = algo.update(Rollout(obs, a, torch.tensor([1.0, 3.0]), torch.zeros(2), torch.zeros(2)))
    assert s1["baseline"] == 2.0 and s1["advantage"] == pytest.approx(0.0)
    s2 = algo.update(Rollout(obs, a, torch.tensor([6.0, 6.0]), torch.zeros(2), torch.zeros(2)))
    assert s2["baseline"] == 2.0 and algo.baseline == pytest.approx(4.0)
    other = create("algorithm", {"name": "reinforce"})
    other.bind(TablePolicy(k=1, levels=3))
    other.load_state_dict(algo.state_dict())
    assert other.baseline == pytest.approx(4.0)
    assert other.optimizer.state_dict()["state"][0]["step"] == 2
