"""What every RL algorithm of the zoo shares: factorised categorical heads and the rollout they learn from.

The policy outputs, for each of the K sliders, logits over L levels (``N x K x L``). The K sliders are
independent categorical distributions, so the log-probability of a joint action and the entropy of the joint
distribution are sums over K. Episodes are one step long (the agent edits once, gamma = 1), so a rollout is
just the batch of observations, the chosen levels, their rewards, and what the acting pass computed.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn


def categorical_log_prob(logits: Tensor, actions: Tensor) -> Tensor:
    """Log-probability of a joint action under K independent categoricals.

    Args:
        logits: ``N x K x L``.
        actions: ``N x K`` integer levels in ``[0, L)``.

    Returns:
        ``(N,)``: ``sum_k log pi_k(a_k)``.
    """
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1).sum(-1)


def categorical_entropy(logits: Tensor) -> Tensor:
    """Entropy of K independent categoricals, summed over K.

    Args:
        logits: ``N x K x L``.

    Returns:
        ``(N,)``: ``sum_k H(pi_k)`` in nats.
    """
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1).sum(-1)


def select_actions(logits: Tensor, deterministic: bool, generator: torch.Generator | None = None) -> Tensor:
    """Argmax levels (deterministic) or a sample from each slider's categorical.

    Args:
        logits: ``N x K x L``.
        deterministic: take the most likely level instead of sampling.
        generator: optional RNG for the sampling.

    Returns:
        ``N x K`` int64 levels.
    """
    if deterministic:
        return logits.argmax(-1)
    n, k, levels = logits.shape
    probs = torch.softmax(logits.detach().float(), dim=-1).reshape(n * k, levels)
    return torch.multinomial(probs, 1, generator=generator).reshape(n, k)


@dataclasses.dataclass
class Rollout:
    """One batch of one-step episodes.

    Attributes:
        obs: ``N x 3 x 64 x 64`` thumbnails the policy saw.
        actions: ``N x K`` chosen levels.
        rewards: ``(N,)`` rewards.
        log_probs: ``(N,)`` log-probabilities of ``actions`` at acting time (for PPO's ratio).
        values: ``(N,)`` state values at acting time.
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    log_probs: Tensor
    values: Tensor


def get_action_and_value(
    policy: nn.Module, obs: Tensor, action: Tensor | None = None, deterministic: bool = False
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The one path for acting and learning (CleanRL style): run the policy, pick or score levels.

    Acting calls it without ``action`` (under ``torch.no_grad``); every algorithm's update calls it with the
    actions taken, so log-probabilities, entropies and values are computed the same way in both.

    Args:
        policy: maps ``obs`` to ``(logits N x K x L, value N)``.
        obs: ``N x 3 x S x S`` thumbnails.
        action: ``N x K`` levels to score; ``None``: pick them (argmax or a sample, see ``deterministic``).
        deterministic: with ``action=None``, take the most likely level instead of sampling.

    Returns:
        ``(action N x K, log_prob N, entropy N, value N, logits N x K x L)``.
    """
    logits, value = policy(obs)
    if action is None:
        action = select_actions(logits, deterministic)
    return action, categorical_log_prob(logits, action), categorical_entropy(logits), value, logits


def adam(policy: nn.Module, lr: float, beta1: float, beta2: float) -> torch.optim.Adam:
    """The paper's optimiser (Adam with beta1 = 0.5) over the policy's parameters."""
    return torch.optim.Adam(policy.parameters(), lr=lr, betas=(beta1, beta2))


def step(optimizer: torch.optim.Optimizer, loss: Tensor, max_grad_norm: float) -> float:
    """Backpropagate ``loss``, clip the global gradient norm, step. Returns the norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    return float(norm)
