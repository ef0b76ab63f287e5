"""REINFORCE: the plain policy gradient with a running-mean reward baseline (no value head needed).

The whole update, for a batch of one-step episodes::

    A = R - b                                  (b: exponential running mean of past batch rewards)
    policy_loss = -mean(sum_k log pi_k(a_k) * A) - beta * mean(sum_k H(pi_k))
    Adam step after clipping the gradient norm;  then b <- decay * b + (1 - decay) * mean(R)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.registry import register
from zoo.rl.common import Rollout, adam, get_action_and_value, step


@register("algorithm", "reinforce", paper="Williams, Machine Learning 1992", tags=("rl_edit",))
class Reinforce:
    """Policy gradient (REINFORCE) with a running-mean baseline; the policy's value output is ignored.

    Args:
        lr: Adam learning rate.
        beta1: Adam beta1.
        beta2: Adam beta2.
        entropy_coef: weight of the entropy bonus.
        baseline_decay: decay of the exponential running mean of the batch rewards (0: last batch only).
        max_grad_norm: global gradient-norm clip.
    """

    uses_value = False

    def __init__(
        self,
        lr: float = 1e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        entropy_coef: float = 1e-3,
        baseline_decay: float = 0.9,
        max_grad_norm: float = 40.0,
    ) -> None:
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.entropy_coef = entropy_coef
        self.baseline_decay = baseline_decay
        self.max_grad_norm = max_grad_norm
        self.baseline: float | None = None  # set from the first batch
        self.policy: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def bind(self, policy: nn.Module) -> None:
        """Attach the policy (possibly DDP-wrapped) and build the optimiser."""
        self.policy = policy
        self.optimizer = adam(policy, self.lr, self.beta1, self.beta2)

    def update(self, batch: Rollout) -> dict[str, float]:
        """One policy-gradient step; returns scalar metrics."""
        assert self.policy is not None and self.optimizer is not None, "call bind(policy) first"
        mean_reward = float(batch.rewards.mean())
        if self.baseline is None:
            self.baseline = mean_reward
        _, log_prob, entropy, _, _ = get_action_and_value(self.policy, batch.obs, batch.actions)
        advantage = batch.rewards - self.baseline
        policy_loss = -(log_prob * advantage).mean() - self.entropy_coef * entropy.mean()
        grad_norm = step(self.optimizer, policy_loss, self.max_grad_norm)
        baseline_used = self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * mean_reward
        return {
            "policy_loss": policy_loss.item(),
            "entropy": entropy.mean().item(),
            "baseline": baseline_used,
            "advantage": advantage.mean().item(),
            "grad_norm": grad_norm,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict() if self.optimizer else None, "baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state.get("baseline")
