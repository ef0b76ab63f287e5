"""The editing reward: how target-like the critic finds the edit, minus a penalty for straying from the source.

``R = objective.reward(critic(q(edited))) - alpha * penalty.per_image(source, q(edited))``, with ``q`` the 8-bit
rounding the reference applies before the critic sees an edited thumbnail. With the paper's pieces
(``wgan_gp``: the raw critic score; ``mse``; ``alpha = 100``) this is ``D(edited) - 100 * MSE(source, edited)``
on 64 x 64 thumbnails in [0, 1]. Any registered adversarial objective and content loss can be swapped in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from zoo.errors import ParameterError
from zoo.registry import create
from zoo.rl.editor import quantize_8bit


class EditReward(nn.Module):
    """Reward of one-step editing episodes, built from registered pieces.

    Args:
        objective: an adversarial objective block or name (``wgan_gp``): supplies ``reward(scores) -> (N,)``.
        penalty: a content loss block or name (``mse``): supplies ``per_image(source, output) -> (N,)``.
        alpha: weight of the penalty (100 in the paper).
        quantize: round edited thumbnails to 8 bits before scoring them.
    """

    def __init__(
        self,
        objective: str | dict[str, Any] | nn.Module = "wgan_gp",
        penalty: str | dict[str, Any] | nn.Module = "mse",
        alpha: float = 100.0,
        quantize: bool = True,
    ) -> None:
        super().__init__()
        self.objective = create("loss", objective, where="reward objective")
        self.penalty = create("loss", penalty, where="reward penalty")
        if not getattr(self.objective, "is_adversarial", False) or not hasattr(self.objective, "reward"):
            raise ParameterError(
                f"reward: the objective must be an adversarial objective (wgan_gp, lsgan, hinge, ...), got "
                f"{type(self.objective).__name__}."
            )
        if getattr(self.penalty, "is_adversarial", False) or not hasattr(self.penalty, "per_image"):
            raise ParameterError(
                f"reward: the penalty must be a content loss with per_image (mse, l1, ...), got "
                f"{type(self.penalty).__name__}."
            )
        self.alpha = float(alpha)
        self.quantize = bool(quantize)

    def forward(
        self,
        critic: Callable[[Tensor], Tensor] | None,
        source: Tensor,
        edited: Tensor,
        scores: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Per-image reward and its parts (no gradients flow: rewards are constants for the policy).

        Args:
            critic: the discriminator scoring thumbnails (unused when ``scores`` is given).
            source: ``N x 3 x 64 x 64`` unedited thumbnails.
            edited: ``N x 3 x 64 x 64`` edited thumbnails (already quantised when ``scores`` is given).
            scores: the critic's scores of ``edited`` if the caller has them already (saves a forward pass).

        Returns:
            ``{"reward", "adversarial", "penalty", "scores", "edited"}``: ``(N,)`` each (``penalty`` already times
            alpha), the critic's per-image scores, and the (quantised) edited thumbnails it saw.
        """
        edited = quantize_8bit(edited) if self.quantize else edited
        if scores is None:
            if critic is None:
                raise ParameterError("reward: give the critic or its scores of the edited thumbnails.")
            with torch.no_grad():
                scores = critic(edited.detach())
        adversarial = self.objective.reward(scores).detach().float()
        penalty = self.alpha * self.penalty.per_image(source, edited).detach().float()
        return {
            "reward": adversarial - penalty,
            "adversarial": adversarial,
            "penalty": penalty,
            "scores": scores.detach().reshape(scores.shape[0], -1).mean(1),
            "edited": edited.detach(),
        }
