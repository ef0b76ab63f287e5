"""Every registered RL algorithm must learn a small contextual bandit whose best action is known.

The bandit: two contexts, shown to the policy as tiny images (dark or bright), K = 2 sliders with L = 5 levels
each. In the dark context the best levels are (4, 1), in the bright one (0, 3); the reward is the fraction of
sliders at their best level (so 0, 0.5 or 1). A tiny policy network built here (obs -> (logits N x K x L,
value N), the policy contract) learns from sampled actions with each algorithm's own update.

What must hold after a fixed number of seeded updates, for every algorithm of the registry:

- the argmax policy picks the best level of every slider in both contexts;
- the mean sampled reward of the last updates is high (well above the 0.2 of a uniform policy);
- the probability of the best levels is clearly the largest (> 0.6).

A second test starts from a skewed policy under a reward that ignores the action: the entropy bonus alone
must then raise the entropy towards the uniform policy's (a flipped sign, a bonus become a penalty, lowers it).

Algorithms are configured through the constructor parameters they accept (``lr``, ``entropy_coef``), so an
algorithm added later is tested without editing this file.
"""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch
from torch import nn

import zoo.rl.a2c  # noqa: F401  (registers)
import zoo.rl.ppo  # noqa: F401
import zoo.rl.reinforce  # noqa: F401
from zoo.registry import REGISTRIES, create, entries, get
from zoo.rl.common import Rollout

pytestmark = pytest.mark.usefixtures("one_thread")

ALGORITHMS = sorted({e.name for e in entries("algorithm", plugins=False)} | set(REGISTRIES["algorithm"].names()))
K, L, SIDE = 2, 5, 4
BEST = torch.tensor([[4, 1], [0, 3]])  # best level per context (row) and slider (column)
BATCH, UPDATES = 32, 250
ENTROPY_COEF = 0.1


class TinyPolicy(nn.Module):
    """obs ``N x 3 x 4 x 4`` -> (logits ``N x K x L``, value ``N``): one hidden layer, as small as it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIDE * SIDE, 16), nn.Tanh())
        self.logits = nn.Linear(16, K * L)
        self.value = nn.Linear(16, 1)
        self.num_params, self.levels, self.thumbnail_size = K, L, SIDE

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(obs)
        return self.logits(h).view(-1, K, L), self.value(h).squeeze(-1)


def contexts_to_obs(ctx: torch.Tensor) -> torch.Tensor:
    """Context 0: a dark image (0.1), context 1: a bright one (0.9)."""
    return (0.1 + 0.8 * ctx.float()).view(-1, 1, 1, 1).expand(-1, 3, SIDE, SIDE).contiguous()


def act(policy: nn.Module, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample levels from the policy (written here, independent of the package's acting code)."""
    with torch.no_grad():
        logits, values = policy(obs)
        dist = torch.distributions.Categorical(logits=logits)
        actions = dist.sample()
        return actions, dist.log_prob(actions).sum(-1), values


def entropy_of(logits: torch.Tensor) -> torch.Tensor:
    return torch.distributions.Categorical(logits=logits).entropy().sum(-1)


def reward(ctx: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return (actions == BEST[ctx]).float().mean(-1)


def build(name: str, **wanted):
    """The algorithm with those of ``wanted`` its constructor accepts (lr, entropy_coef, ...)."""
    accepted = inspect.signature(get("algorithm", name).__init__).parameters
    params = {k: v for k, v in wanted.items() if k in accepted}
    return create("algorithm", {"name": name, **params})


def train(name: str, seed: int, updates: int, reward_fn, policy: nn.Module | None = None, **params):
    torch.manual_seed(seed)
    policy = policy or TinyPolicy()
    algo = build(name, **params)
    algo.bind(policy)
    gen = torch.Generator().manual_seed(seed)
    rewards = []
    for _ in range(updates):
        ctx = torch.randint(0, 2, (BATCH,), generator=gen)
        obs = contexts_to_obs(ctx)
        actions, logp, values = act(policy, obs)
        r = reward_fn(ctx, actions)
        algo.update(Rollout(obs, actions, r, logp, values))
        rewards.append(float(r.mean()))
    return policy, rewards


def test_the_registry_has_the_known_algorithms():
    assert {"a2c", "ppo", "reinforce"} <= set(ALGORITHMS)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_learns_the_contextual_bandit(name):
    policy, rewards = train(name, 0, UPDATES, reward, lr=0.02, entropy_coef=ENTROPY_COEF)
    obs = contexts_to_obs(torch.tensor([0, 1]))
    with torch.no_grad():
        logits, _ = policy(obs)
    assert torch.equal(logits.argmax(-1), BEST), f"{name}: argmax levels {logits.argmax(-1).tolist()}"
    late = sum(rewards[-20:]) / 20
    assert sum(rewards[:5]) / 5 < 0.5, "the bandit is not trivial at the start"
    assert late > 0.8, f"{name}: mean reward of the last 20 updates {late:.3f}"
    # the chosen levels are clearly the most likely ones, not a coin toss between neighbours
    probs = torch.softmax(logits, -1).gather(-1, BEST.unsqueeze(-1)).squeeze(-1)
    assert (probs > 0.6).all(), f"{name}: probability of the best levels {probs.tolist()}"


@pytest.mark.parametrize("name", ALGORITHMS)
def test_entropy_bonus_alone_spreads_a_skewed_policy(name):
    """The reward ignores the action: only the entropy bonus has a direction, towards the uniform policy."""
    torch.manual_seed(1)
    policy = TinyPolicy()
    with torch.no_grad():
        policy.logits.bias.copy_(torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0] * K))
    obs = contexts_to_obs(torch.tensor([0, 1]))
    with torch.no_grad():
        before = float(entropy_of(policy(obs)[0]).mean())
    policy, _ = train(name, 1, 40, lambda ctx, a: torch.ones(len(ctx)), policy, lr=0.02, entropy_coef=1.0)
    with torch.no_grad():
        after = float(entropy_of(policy(obs)[0]).mean())
    assert after > before + 0.3, f"{name}: entropy {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("name", ALGORITHMS)
def test_update_metrics_and_state_round_trip(name):
    """Every algorithm reports finite ``policy_loss``, ``entropy`` and ``grad_norm`` and checkpoints its optimiser:
    a copy restored from ``state_dict`` makes exactly the same next update."""
    torch.manual_seed(2)
    policy = TinyPolicy()
    algo = build(name, lr=0.02)
    with pytest.raises(AssertionError, match="call bind"):
        algo.update(None)
    algo.bind(policy)
    gen = torch.Generator().manual_seed(2)

    def batch():
        ctx = torch.randint(0, 2, (BATCH,), generator=gen)
        obs = contexts_to_obs(ctx)
        actions, logp, values = act(policy, obs)
        return Rollout(obs, actions, reward(ctx, actions), logp, values)

    for _ in range(3):
        stats = algo.update(batch())
    for key in ("policy_loss", "entropy", "grad_norm"):
        assert math.isfinite(stats[key]), (key, stats)
    assert stats["entropy"] > 0 and stats["grad_norm"] > 0
    twin_policy = TinyPolicy()
    twin_policy.load_state_dict(policy.state_dict())
    twin = build(name, lr=0.02)
    twin.bind(twin_policy)
    twin.load_state_dict(copy.deepcopy(algo.state_dict()))  # (Adam may keep the loaded tensors themselves)
    nxt = batch()
    torch.manual_seed(5)
    algo.update(nxt)
    torch.manual_seed(5)
    twin.update(nxt)
    for p, q in zip(policy.parameters(), twin_policy.parameters(), strict=True):
        assert torch.equal(p, q)


# the paper's settings (Kosugi & Yamasaki: Adam lr 1e-4, beta1 0.5; entropy 1e-3; gradient clip 40)
DEFAULTS = {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "entropy_coef": 1e-3, "max_grad_norm": 40.0}
EXTRA = {
    "a2c": {"value_coef": 1.0},
    "ppo": {"value_coef": 1.0, "clip_coef": 0.2, "epochs": 4, "minibatches": 1, "normalize_advantage": True},
    "reinforce": {"baseline_decay": 0.9},
}


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_defaults(name):
    algo = create("algorithm", name)
    for key, value in {**DEFAULTS, **EXTRA[name]}.items():
        assert getattr(algo, key) == value, key
    assert algo.policy is None and algo.optimizer is None
    assert algo.state_dict()["optimizer"] is None


class TablePolicy(nn.Module):
    """A state-free policy: a K x L logit table and one value (the gradient of each loss is easy to write out)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.table = nn.Parameter(torch.randn(K, L, generator=g))
        self.v = nn.Parameter(torch.tensor(0.3))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = obs.shape[0]
        return self.table.expand(n, -1, -1), self.v.expand(n) + 0.1 * obs.flatten(1).mean(1)


def _written_out_loss(name: str, table, v, obs, actions, rewards, old_logp, values):
    """Each algorithm's loss for one update, from its paper (beta = 0.05, value weight 0.5, PPO clip 0.2)."""
    logits = table.expand(len(obs), -1, -1)
    value = v.expand(len(obs)) + 0.1 * obs.flatten(1).mean(1)
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1).sum(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1).sum(-1)
    if name == "a2c":
        adv = (rewards - value).detach()
        return -(logp * adv).mean() - 0.05 * entropy.mean() + 0.5 * 0.5 * ((value - rewards) ** 2).mean()
    if name == "reinforce":  # first batch: the baseline is its mean reward
        adv = rewards - rewards.mean()
        return -(logp * adv).mean() - 0.05 * entropy.mean()
    adv = rewards - values
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = torch.exp(logp - old_logp)
    surrogate = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
    return surrogate.mean() - 0.05 * entropy.mean() + 0.5 * 0.5 * ((value - rewards) ** 2).mean()


@pytest.mark.parametrize("name", ["a2c", "ppo", "reinforce"])
def test_one_update_has_the_gradient_of_the_written_out_loss(name):
    """The gradient an update leaves on the parameters equals that of the loss written out here (all terms:
    policy gradient, entropy bonus, value loss; PPO's normalised advantage and clipped ratio, with old
    log-probabilities chosen so that some ratios are clipped)."""
    policy = TablePolicy()
    params = {"lr": 0.01, "entropy_coef": 0.05, "max_grad_norm": 1e9}
    if name != "reinforce":
        params["value_coef"] = 0.5
    if name == "ppo":
        params.update(epochs=1, minibatches=1, clip_coef=0.2, normalize_advantage=True)
    algo = create("algorithm", {"name": name, **params})
    algo.bind(policy)
    g = torch.Generator().manual_seed(3)
    obs = torch.rand(6, 3, SIDE, SIDE, generator=g)
    actions = torch.randint(0, L, (6, K), generator=g)
    rewards = torch.rand(6, generator=g)
    with torch.no_grad():
        logits, values = policy(obs)
        logp_now = torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1).sum(-1)
    old_logp = logp_now + torch.tensor([0.5, -0.5, 0.05, -0.05, 0.4, 0.0])  # ratios e^-0.5 .. e^0.5: some clipped
    table = policy.table.detach().clone().requires_grad_(True)
    v = policy.v.detach().clone().requires_grad_(True)
    _written_out_loss(name, table, v, obs, actions, rewards, old_logp, values).backward()
    torch.manual_seed(0)
    algo.update(Rollout(obs, actions, rewards, old_logp, values))
    assert torch.allclose(policy.table.grad, table.grad, atol=1e-6), (policy.table.grad - table.grad).abs().max()
    if name != "reinforce":
        assert torch.allclose(policy.v.grad, v.grad, atol=1e-6)
