"""PPO: clipped-surrogate policy optimisation over one-step episodes, several epochs per batch.

The whole update, for a batch collected with log-probabilities ``old_logp`` and values ``V_old``::

    A = R - V_old                              (normalised over the batch if asked)
    for epoch in 1..E, for each minibatch:
        _, log_pi_a, H, V, _ = get_action_and_value(policy, obs, actions)
        ratio = exp(log pi(a) - old_logp)
        policy_loss = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps))) - beta * mean(H)
        value_loss  = 0.5 * mean((V - R)^2)
        Adam step on policy_loss + value_coef * value_loss after clipping the gradient norm
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.registry import register
from zoo.rl.common import Rollout, adam, get_action_and_value, step


@register("algorithm", "ppo", paper="Schulman et al., arXiv 2017", tags=("rl_edit",))
class PPO:
    """Proximal policy optimisation with the clipped surrogate, several epochs over each batch.

    Args:
        lr: Adam learning rate.
        beta1: Adam beta1.
        beta2: Adam beta2.
        clip_coef: epsilon of the ratio clip.
        epochs: passes over each batch.
        minibatches: minibatches per pass (the batch is shuffled each pass).
        entropy_coef: weight of the entropy bonus.
        value_coef: weight of the value loss ``0.5 (V - R)^2``.
        max_grad_norm: global gradient-norm clip.
        normalize_advantage: standardise advantages over the batch.
    """

    uses_value = True

    def __init__(
        self,
        lr: float = 1e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        clip_coef: float = 0.2,
        epochs: int = 4,
        minibatches: int = 1,
        entropy_coef: float = 1e-3,
        value_coef: float = 1.0,
        max_grad_norm: float = 40.0,
        normalize_advantage: bool = True,
    ) -> None:
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.clip_coef = clip_coef
        self.epochs = epochs
        self.minibatches = minibatches
        self.entropy_coef = entropy_coef
        self.value_coef = value_coef
        self.max_grad_norm = max_grad_norm
        self.normalize_advantage = normalize_advantage
        self.policy: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def bind(self, policy: nn.Module) -> None:
        """Attach the policy (possibly DDP-wrapped) and build the optimiser."""
        self.policy = policy
        self.optimizer = adam(policy, self.lr, self.beta1, self.beta2)

    def update(self, batch: Rollout) -> dict[str, float]:
        """``epochs`` passes of clipped-surrogate steps over the batch; returns metrics of the last pass."""
        assert self.policy is not None and self.optimizer is not None, "call bind(policy) first"
        n = batch.rewards.shape[0]
        advantage = (batch.rewards - batch.values).detach()
        if self.normalize_advantage and n > 1:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        size = max(1, n // self.minibatches)
        stats: dict[str, float] = {}
        for _ in range(self.epochs):
            order = torch.randperm(n, device=batch.rewards.device)
            for start in range(0, n, size):
                idx = order[start : start + size]
                _, log_prob, entropy, value, _ = get_action_and_value(self.policy, batch.obs[idx], batch.actions[idx])
                log_ratio = log_prob - batch.log_probs[idx].detach()
                ratio = log_ratio.exp()
                adv = advantage[idx]
                surrogate = torch.max(-adv * ratio, -adv * ratio.clamp(1 - self.clip_coef, 1 + self.clip_coef))
                policy_loss = surrogate.mean() - self.entropy_coef * entropy.mean()
                value_loss = 0.5 * (value - batch.rewards[idx]).pow(2).mean()
                grad_norm = step(self.optimizer, policy_loss + self.value_coef * value_loss, self.max_grad_norm)
                with torch.no_grad():
                    stats = {
                        "policy_loss": policy_loss.item(),
                        "value_loss": value_loss.item(),
                        "entropy": entropy.mean().item(),
                        "approx_kl": float(((ratio - 1) - log_ratio).mean()),
                        "clip_fraction": float(((ratio - 1).abs() > self.clip_coef).float().mean()),
                        "grad_norm": grad_norm,
                    }
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict() if self.optimizer else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
