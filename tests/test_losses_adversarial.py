"""Adversarial objectives and pixel content losses: values, per-image rewards, the gradient penalty, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from zoo.errors import InputError
from zoo.registry import create

OBJECTIVES = ["lsgan", "ralsgan", "wgan_gp", "hinge", "nonsaturating"]


def scores(n=3, seed=0, shape=(1, 4, 4)):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", OBJECTIVES)
def test_interface_and_reward_is_negated_per_image_generator_loss(name):
    obj = create("loss", name)
    assert obj.is_adversarial is True
    real, fake = scores(seed=1), scores(seed=2)
    d = obj.critic_loss(real, fake)
    g = obj.generator_loss(fake, real)
    assert d.ndim == 0 and g.ndim == 0 and torch.isfinite(d) and torch.isfinite(g)
    r = obj.reward(fake, real)
    assert r.shape == (3,)
    if name == "wgan_gp":  # the reward is measured from the real images' mean score
        assert torch.allclose(-r.mean(), g + real.flatten(1).mean(), atol=1e-6)
    elif name != "ralsgan":  # relativistic: the batch-level loss also has a real-image term
        assert torch.allclose(-r.mean(), g, atol=1e-6)
    assert obj.penalty(nn.Identity(), real, fake).shape == ()


@pytest.mark.parametrize("name", OBJECTIVES)
def test_a_common_shift_of_all_scores_changes_no_shift_invariant_objective(name):
    """Where the critic loss ignores a common shift of every score, the reward must ignore it too.

    (The issue: RaLSGAN's reward without the real scores moved from -2.04 to -16.60 when every score moved by 5,
    while its critic loss stayed at 1.1202.)
    """
    obj = create("loss", name)
    real, fake = scores(4, 5), scores(4, 6)
    shifted_loss = obj.critic_loss(real + 5.0, fake + 5.0)
    invariant = bool(torch.isclose(shifted_loss, obj.critic_loss(real, fake), atol=1e-5))
    assert invariant == obj.contract().shift_invariant
    if invariant:
        assert torch.allclose(obj.reward(fake + 5.0, real + 5.0), obj.reward(fake, real), atol=1e-5)
    else:  # absolute targets: the scores mean something on their own, so the critic loss moved too
        assert not torch.allclose(obj.reward(fake + 5.0, real + 5.0), obj.reward(fake, real))


def test_relativistic_reward_needs_the_real_scores():
    obj = create("loss", "ralsgan")
    fake, real = torch.tensor([[0.5], [2.0]]), torch.tensor([[1.0], [3.0]])
    # -(C(f) - mean C(r) - 1)^2 with mean C(r) = 2
    assert torch.allclose(obj.reward(fake, real), torch.tensor([-((0.5 - 3.0) ** 2), -((2.0 - 3.0) ** 2)]))
    with pytest.raises(InputError, match="real images"):
        obj.reward(fake, None)


def test_lsgan_values():
    obj = create("loss", "lsgan")
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert obj.critic_loss(ones, zeros) == 0
    assert obj.generator_loss(ones) == 0
    assert obj.critic_loss(zeros, ones) == pytest.approx(1.0)  # 1/2 (1 + 1)
    assert obj.generator_loss(torch.full((2, 1), 3.0)) == pytest.approx(4.0)


def test_ralsgan_matches_the_official_formula():
    obj = create("loss", "ralsgan")
    real, fake = scores(4, 3), scores(4, 4)
    mse = nn.functional.mse_loss
    d_ref = 0.5 * (mse(real - fake.mean(), torch.ones_like(real)) + mse(fake - real.mean(), torch.zeros_like(fake)))
    g_ref = 0.5 * (mse(real - fake.mean(), torch.zeros_like(real)) + mse(fake - real.mean(), torch.ones_like(fake)))
    assert obj.critic_loss(real, fake) == pytest.approx(float(d_ref), rel=1e-5)
    assert obj.generator_loss(fake, real) == pytest.approx(float(g_ref), rel=1e-5)
    with pytest.raises(InputError, match="real images"):
        obj.generator_loss(fake)


def test_wgan_gp_reward_is_the_score_above_the_real_mean_and_losses():
    obj = create("loss", "wgan_gp")
    fake = torch.tensor([[0.5], [-2.0]])
    real = torch.tensor([[1.0], [3.0]])
    assert torch.equal(obj.reward(fake, real), torch.tensor([0.5 - 2.0, -2.0 - 2.0]))
    assert torch.equal(obj.reward(fake, None), torch.tensor([0.5, -2.0]))  # no real scores: the raw score
    assert obj.critic_loss(real, fake) == pytest.approx(-0.75 - 2.0)
    assert obj.generator_loss(fake) == pytest.approx(0.75)
    patch = torch.arange(8.0).view(2, 1, 2, 2)
    assert torch.allclose(obj.reward(patch, torch.zeros(2, 1)), torch.tensor([1.5, 5.5]))


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_two_sided_weight_10():
    # a linear critic has gradient w everywhere: penalty = 10 (||w|| - 1)^2 for any interpolate
    w = torch.full((3, 2, 2), 0.5)  # ||w|| = sqrt(12 * 0.25) = sqrt(3)
    critic = Linear(w)
    obj = create("loss", "wgan_gp")
    real, fake = torch.rand(4, 3, 2, 2), torch.rand(4, 3, 2, 2)
    gp = obj.penalty(critic, real, fake)
    assert float(gp) == pytest.approx(10 * (3**0.5 - 1) ** 2, rel=1e-5)
    gp.backward()  # differentiable with respect to the critic's parameters
    assert critic.w.grad is not None and critic.w.grad.abs().sum() > 0
    # two-sided: a critic with a too-small gradient is penalised as well
    small = Linear(torch.full((3, 2, 2), 0.01))
    assert float(obj.penalty(small, real, fake)) == pytest.approx(10 * (1 - 0.01 * 12**0.5) ** 2, rel=1e-5)
    assert create("loss", {"name": "wgan_gp", "gp_weight": 0.0}).penalty(critic, real, fake) == 0


def test_gradient_penalty_interpolates_per_sample(monkeypatch):
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x.flatten(1).sum(1, keepdim=True)

    real, fake = torch.ones(6, 3, 2, 2), torch.zeros(6, 3, 2, 2)
    create("loss", "wgan_gp").penalty(Spy(), real, fake)
    alphas = seen[0][:, 0, 0, 0]
    assert torch.allclose(seen[0], alphas.view(6, 1, 1, 1).expand(6, 3, 2, 2))  # one alpha per image
    assert len(set(alphas.tolist())) > 1


def test_hinge_and_nonsaturating_values():
    h = create("loss", "hinge")
    assert h.critic_loss(torch.full((2, 1), 2.0), torch.full((2, 1), -2.0)) == 0
    assert h.critic_loss(torch.zeros(2, 1), torch.zeros(2, 1)) == pytest.approx(2.0)
    ns = create("loss", "nonsaturating")
    log2 = float(torch.log(torch.tensor(2.0)))
    assert ns.critic_loss(torch.zeros(2, 1), torch.zeros(2, 1)) == pytest.approx(2 * log2)
    assert ns.generator_loss(torch.zeros(2, 1)) == pytest.approx(log2)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_bad_scores_are_a_sentence(name):
    obj = create("loss", name)
    with pytest.raises(InputError, match="scores must be a tensor"):
        obj.critic_loss(torch.tensor(1.0), torch.zeros(2, 1))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=2, max_size=8), st.sampled_from(OBJECTIVES))
def test_objectives_finite_and_lsgan_nonnegative(values, name):
    obj = create("loss", name)
    t = torch.tensor(values).view(-1, 1)
    for v in (obj.critic_loss(t, t.flip(0)), obj.generator_loss(t, t), obj.reward(t, t.flip(0))):
        assert torch.isfinite(v).all()
    if name in ("lsgan", "ralsgan", "hinge", "nonsaturating"):
        assert obj.critic_loss(t, t.flip(0)) >= 0


@pytest.mark.parametrize("name, fn", [("mse", lambda d: d**2), ("l1", lambda d: d.abs())])
def test_content_losses(name, fn):
    loss = create("loss", name)
    assert loss.is_adversarial is False
    a, b = torch.rand(3, 3, 5, 7), torch.rand(3, 3, 5, 7)
    per = loss.per_image(a, b)
    assert per.shape == (3,)
    assert torch.allclose(per, fn(b - a).flatten(1).mean(1))
    assert torch.allclose(loss(a, b), fn(b - a).mean())
    assert torch.equal(loss.per_image(a, a), torch.zeros(3))
    with pytest.raises(InputError, match="same shape"):
        loss(a, b[:, :, :4])
    with pytest.raises(InputError, match="N x C x H x W"):
        loss(a[0], b[0])
