"""A2C: synchronous advantage actor-critic with one-step episodes (the paper's A3C, batched).

The whole update, for a batch of N one-step episodes (gamma = 1, so the return is the reward R)::

    _, log_pi_a, H, V, _ = get_action_and_value(policy, obs, actions)      (the acting path, scoring the actions)
    A = R - V                                  (detached: the advantage only weighs the policy gradient)
    policy_loss = -mean(sum_k log pi_k(a_k) * A) - beta * mean(sum_k H(pi_k))
    value_loss  = 0.5 * mean((V - R)^2)
    loss = policy_loss + value_coef * value_loss;  Adam step after clipping the gradient norm to 40
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.registry import register
from zoo.rl.common import Rollout, adam, get_action_and_value, step


@register("algorithm", "a2c", paper="Mnih et al., ICML 2016; Kosugi & Yamasaki, AAAI 2020", tags=("rl_edit",))
class A2C:
    """Advantage actor-critic, batched and synchronous, one-step episodes (gamma = 1).

    Args:
        lr: Adam learning rate (1e-4 in the paper).
        beta1: Adam beta1 (0.5 in the paper).
        beta2: Adam beta2.
        entropy_coef: beta, the weight of the entropy bonus (0.001).
        value_coef: weight of the value loss ``0.5 (V - R)^2``.
        max_grad_norm: global gradient-norm clip (40).
    """

    uses_value = True

    def __init__(
        self,
        lr: float = 1e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        entropy_coef: float = 1e-3,
        value_coef: float = 1.0,
        max_grad_norm: float = 40.0,
    ) -> None:
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.entropy_coef = entropy_coef
        self.value_coef = value_coef
        self.max_grad_norm = max_grad_norm
        self.policy: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def bind(self, policy: nn.Module) -> None:
        """Attach the policy (possibly DDP-wrapped) and build the optimiser."""
        self.policy = policy
        self.optimizer = adam(policy, self.lr, self.beta1, self.beta2)

    def update(self, batch: Rollout) -> dict[str, float]:
        """One gradient step on a batch of one-step episodes; returns scalar metrics."""
        assert self.policy is not None and self.optimizer is not None, "call bind(policy) first"
        _, log_prob, entropy, value, _ = get_action_and_value(self.policy, batch.obs, batch.actions)
        advantage = (batch.rewards - value).detach()
        policy_loss = -(log_prob * advantage).mean() - self.entropy_coef * entropy.mean()
        value_loss = 0.5 * (value - batch.rewards).pow(2).mean()
        grad_norm = step(self.optimizer, policy_loss + self.value_coef * value_loss, self.max_grad_norm)
        return {
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
            "entropy": entropy.mean().item(),
            "advantage": advantage.mean().item(),
            "grad_norm": grad_norm,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict() if self.optimizer else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
