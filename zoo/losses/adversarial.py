"""Adversarial objectives: critic loss, generator loss, per-image reward and gradient penalty.

Every objective maps discriminator scores (an ``N x 1 x h x w`` patch map or ``N x 1``) to

- ``critic_loss(real_scores, fake_scores)``: scalar the discriminator minimises;
- ``generator_loss(fake_scores, real_scores=None)``: scalar the generator minimises (``real_scores`` is
  only used by relativistic objectives, see ``needs_real_for_generator``);
- ``reward(fake_scores, real_scores)``: ``(N,)``, higher is better, the negated per-image generator loss (patch
  maps averaged). It always gets the real scores: relativistic objectives need them, and an objective whose critic
  loss ignores a common shift of all scores (``contract.shift_invariant``: RaLSGAN, WGAN-GP) gives a reward that
  ignores it too (WGAN-GP's reward is ``C(f) - mean C(r)``, not the raw score, whose level means nothing);
- ``penalty(critic, real, fake)``: a scalar added to the critic loss (zero unless the objective has a penalty).

Each objective declares its :class:`~zoo.contracts.AdversarialContract` (the score ranges it is meaningful on,
whether it gives a reward, relativistic, shift-invariant), which ``zoo recipe check`` uses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.contracts import SCORE_RANGES, AdversarialContract
from zoo.errors import InputError
from zoo.registry import register

__all__ = [
    "AdversarialObjective",
    "Hinge",
    "LSGAN",
    "NonSaturating",
    "RaLSGAN",
    "WGANGP",
    "gradient_penalty",
    "per_image",
]


def per_image(scores: Tensor, who: str = "objective") -> Tensor:
    """Average a score map per image: ``N x ...`` -> ``(N,)``."""
    if not isinstance(scores, Tensor) or scores.ndim == 0:
        got = f"a {scores.ndim}-d tensor" if isinstance(scores, Tensor) else type(scores).__name__
        raise InputError(f"{who}: scores must be a tensor N x 1 [x h x w] with one row per image, got {got}.")
    return scores.reshape(scores.shape[0], -1).float().mean(dim=1)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, center: float = 1.0) -> Tensor:
    """Two-sided gradient penalty ``E[(||grad_x C(x_hat)||_2 - center)^2]`` on per-sample interpolates.

    Args:
        critic: the discriminator.
        real: ``N x C x H x W`` real images.
        fake: ``N x C x H x W`` generated images (detached or not: only the interpolates get gradients).
        center: the target norm (1 in Gulrajani et al. 2017).

    Returns:
        Scalar (unweighted) penalty, differentiable with respect to the critic's parameters.
    """
    if real.shape != fake.shape:
        raise InputError(
            f"wgan_gp penalty: real and fake batches must have the same shape, got {tuple(real.shape)} and "
            f"{tuple(fake.shape)}."
        )
    alpha = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    with torch.enable_grad():
        scores = critic(x_hat)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.reshape(grad.shape[0], -1).norm(2, dim=1)
    return ((norm - center) ** 2).mean()


class AdversarialObjective(nn.Module):
    """Base class of the adversarial objectives (the declared interface of the kind; not registered itself)."""

    is_adversarial = True
    needs_real_for_generator = False
    accepts: frozenset[str] = frozenset(SCORE_RANGES)  # score ranges the objective is meaningful on
    shift_invariant = False  # critic loss unchanged when every score moves by the same constant

    @classmethod
    def contract(cls, params: object = None) -> AdversarialContract:
        """What ``zoo recipe check`` relies on (see :class:`~zoo.contracts.AdversarialContract`)."""
        return AdversarialContract(
            accepts=cls.accepts,
            gives_reward=True,
            relativistic=cls.needs_real_for_generator,
            shift_invariant=cls.shift_invariant,
        )

    @property
    def _who(self) -> str:
        return f"loss {getattr(self, '__zoo_name__', type(self).__name__)!r}"

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        raise NotImplementedError

    def generator_loss_per_image(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return self.generator_loss_per_image(fake_scores, real_scores).mean()

    def reward(self, fake_scores: Tensor, real_scores: Tensor | None) -> Tensor:
        """Per-image reward ``(N,)`` for RL: the negated per-image generator loss (higher is better).

        Args:
            fake_scores: the critic's scores of the generated images (``N x ...``).
            real_scores: its scores of a batch of real images (relativistic and shift-invariant objectives use
                their mean; the others ignore them).
        """
        if self.needs_real_for_generator and real_scores is None:
            raise InputError(f"{self._who}: the relativistic reward needs the critic's scores on real images.")
        return -self.generator_loss_per_image(fake_scores, real_scores)

    def penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
        """Extra critic loss term; zero for objectives without a gradient penalty."""
        return real.new_zeros(())

    def forward(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """Same as :meth:`critic_loss`."""
        return self.critic_loss(real_scores, fake_scores)


@register("loss", "lsgan", paper="Mao et al., ICCV 2017", tags=("adversarial", "enlightengan"))
class LSGAN(AdversarialObjective):
    """Least-squares GAN: D: 1/2[(D(r) - 1)^2 + D(f)^2], G: (D(f) - 1)^2 (EnlightenGAN's local loss).

    Args:
        real_label: target score of real images.
        fake_label: target score of generated images in the critic loss.
    """

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        real = per_image((real_scores - self.real_label) ** 2, self._who)
        fake = per_image((fake_scores - self.fake_label) ** 2, self._who)
        return 0.5 * (real.mean() + fake.mean())

    def generator_loss_per_image(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return per_image((fake_scores - self.real_label) ** 2, self._who)


@register(
    "loss",
    "ralsgan",
    paper="Jolicoeur-Martineau, ICLR 2019; Jiang et al., IEEE TIP 2021",
    tags=("adversarial", "enlightengan"),
)
class RaLSGAN(AdversarialObjective):
    """Relativistic average LSGAN, EnlightenGAN's global loss: D(r) is judged against the mean D(f) and vice versa.

    Critic: 1/2[(C(r) - mean C(f) - 1)^2 + (C(f) - mean C(r))^2]; generator: the same with real and fake swapped,
    1/2[(C(f) - mean C(r) - 1)^2 + (C(r) - mean C(f))^2]. Means are over the batch and the patch map. The
    per-image reward is the fake image's part of the generator loss, -(C(f) - mean C(r) - 1)^2: like the critic
    loss, it does not change when every score moves by the same constant.
    """

    needs_real_for_generator = True
    accepts = frozenset({"unbounded", "logits"})
    shift_invariant = True

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        real = per_image((real_scores - fake_scores.float().mean() - 1.0) ** 2, self._who)
        fake = per_image((fake_scores - real_scores.float().mean()) ** 2, self._who)
        return 0.5 * (real.mean() + fake.mean())

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        if real_scores is None:
            raise InputError(f"{self._who}: the relativistic generator loss needs the critic's scores on real images.")
        fake = per_image((fake_scores - real_scores.float().mean() - 1.0) ** 2, self._who)
        real = per_image((real_scores - fake_scores.float().mean()) ** 2, self._who)
        return 0.5 * (fake.mean() + real.mean())

    def generator_loss_per_image(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        # the part of the generator loss that belongs to each generated image
        if real_scores is None:
            raise InputError(f"{self._who}: the relativistic generator loss needs the critic's scores on real images.")
        return per_image((fake_scores - real_scores.float().mean() - 1.0) ** 2, self._who)


@register("loss", "wgan_gp", paper="Gulrajani et al., NeurIPS 2017", tags=("adversarial", "rl_edit"))
class WGANGP(AdversarialObjective):
    """Wasserstein GAN with a two-sided gradient penalty on per-sample interpolates (unbounded scores only).

    Critic: mean C(f) - mean C(r) (plus ``penalty``); generator: -mean C(f); reward: C(f) - mean C(r) per image.
    A Wasserstein critic is defined up to a constant (its loss ignores a common shift of all scores), so the reward
    is measured from the real images' mean score: the paper's ``D(edited)`` up to a per-batch constant that a
    baseline removes anyway, without the drift of the critic's absolute level.

    Args:
        gp_weight: weight of the gradient penalty (10 in the paper).
        center: target gradient norm of the two-sided penalty.
    """

    accepts = frozenset({"unbounded", "logits"})
    shift_invariant = True

    def __init__(self, gp_weight: float = 10.0, center: float = 1.0) -> None:
        super().__init__()
        if gp_weight < 0:
            raise InputError(f"loss 'wgan_gp': gp_weight must be >= 0, got {gp_weight}.")
        self.gp_weight = float(gp_weight)
        self.center = float(center)

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return per_image(fake_scores, self._who).mean() - per_image(real_scores, self._who).mean()

    def generator_loss_per_image(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return -per_image(fake_scores, self._who)

    def reward(self, fake_scores: Tensor, real_scores: Tensor | None) -> Tensor:
        """``C(f) - mean C(r)`` per image (the raw score when no real scores are given)."""
        fake = per_image(fake_scores, self._who)
        return fake if real_scores is None else fake - per_image(real_scores, self._who).mean()

    def penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
        """``gp_weight`` times the two-sided gradient penalty (see :func:`gradient_penalty`)."""
        if self.gp_weight == 0:
            return real.new_zeros(())
        return self.gp_weight * gradient_penalty(critic, real, fake, self.center)


@register("loss", "hinge", paper="Lim & Ye 2017; Miyato et al., ICLR 2018", tags=("adversarial",))
class Hinge(AdversarialObjective):
    """Hinge loss: D: mean relu(1 - D(r)) + mean relu(1 + D(f)); G: -mean D(f); reward: D(f)."""

    accepts = frozenset({"unbounded", "logits"})

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        real = per_image(F.relu(1.0 - real_scores), self._who)
        fake = per_image(F.relu(1.0 + fake_scores), self._who)
        return real.mean() + fake.mean()

    def generator_loss_per_image(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return -per_image(fake_scores, self._who)


@register("loss", "nonsaturating", paper="Goodfellow et al., NeurIPS 2014", tags=("adversarial",))
class NonSaturating(AdversarialObjective):
    """Standard GAN on logits: D: softplus(-D(r)) + softplus(D(f)); G (non-saturating): softplus(-D(f))."""

    accepts = frozenset({"unbounded", "logits"})

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        real = per_image(F.softplus(-real_scores.float()), self._who)
        fake = per_image(F.softplus(fake_scores.float()), self._who)
        return real.mean() + fake.mean()

    def generator_loss_per_image(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return per_image(F.softplus(-fake_scores.float()), self._who)
