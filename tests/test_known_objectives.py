"""Known values for the adversarial objectives, worked out by hand from each paper's formula.

Scores: real ``r = (2, 0)`` (mean 1), fake ``f = (1, -1)`` (mean 0), one score per image; the same numbers as
2 x 2 patch maps must give the same values (patch maps are averaged per image first). The numbers next to each
assertion are the formula evaluated by hand.

The gradient penalty uses a non-linear critic, ``C(x) = sum(x^2)`` per image, whose gradient ``2 x`` has norm
``2 ||x||``: the interpolates the penalty evaluates are recorded and checked to lie on the segment between each
real image and its fake, and the penalty is checked against ``mean((2 ||x_hat|| - 1)^2)`` on them. With
``real == fake`` the interpolate is that image whatever the random mixing weight, so the value is known exactly.
"""

from __future__ import annotations

import math

import pytest
import torch

from zoo.losses.adversarial import gradient_penalty
from zoo.registry import create

pytestmark = pytest.mark.usefixtures("one_thread")

REAL = torch.tensor([[2.0], [0.0]])
FAKE = torch.tensor([[1.0], [-1.0]])


def as_maps(scores: torch.Tensor) -> torch.Tensor:
    """The same scores as ``N x 1 x 2 x 2`` patch maps whose per-image mean is the score."""
    offsets = torch.tensor([[0.5, -0.5], [-0.25, 0.25]])
    return scores.view(-1, 1, 1, 1) + offsets


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


# objective -> (critic loss, generator loss, per-image reward) at REAL, FAKE, by hand
KNOWN = {
    # LSGAN: critic 1/2 [mean (r - 1)^2 + mean f^2] = 1/2 [(1 + 1)/2 + (1 + 1)/2] = 1
    # generator mean (f - 1)^2 = (0 + 4)/2 = 2; reward -(f - 1)^2 = (0, -4)
    "lsgan": (1.0, 2.0, [0.0, -4.0]),
    # RaLSGAN (mean r = 1, mean f = 0): critic 1/2 [mean (r - 0 - 1)^2 + mean (f - 1)^2] = 1/2 [1 + 2] = 1.5
    # generator 1/2 [mean (f - 1 - 1)^2 + mean (r - 0)^2] = 1/2 [(1 + 9)/2 + (4 + 0)/2] = 3.5
    # reward -(f - mean r - 1)^2 = (-(1 - 2)^2, -(-1 - 2)^2) = (-1, -9)
    "ralsgan": (1.5, 3.5, [-1.0, -9.0]),
    # WGAN-GP: critic mean f - mean r = -1; generator -mean f = 0; reward f - mean r = (0, -2)
    "wgan_gp": (-1.0, 0.0, [0.0, -2.0]),
    # hinge: critic mean relu(1 - r) + mean relu(1 + f) = (0 + 1)/2 + (2 + 0)/2 = 1.5; generator -mean f = 0;
    # reward f = (1, -1)
    "hinge": (1.5, 0.0, [1.0, -1.0]),
    # non-saturating: critic mean softplus(-r) + mean softplus(f); generator mean softplus(-f);
    # reward -softplus(-f)
    "nonsaturating": (
        (softplus(-2.0) + softplus(0.0)) / 2 + (softplus(1.0) + softplus(-1.0)) / 2,
        (softplus(-1.0) + softplus(1.0)) / 2,
        [-softplus(-1.0), -softplus(1.0)],
    ),
}


@pytest.mark.parametrize("maps", [False, True], ids=["per-image", "patch-map"])
@pytest.mark.parametrize("name", list(KNOWN))
def test_known_values(name, maps):
    obj = create("loss", name)
    real, fake = (as_maps(REAL), as_maps(FAKE)) if maps else (REAL, FAKE)
    critic, gen, reward = KNOWN[name]
    if not maps or name == "wgan_gp":
        # (squares, hinges and softplus of a map are not those of its mean: only the linear WGAN objective has
        # the same values on maps; patch-map averaging of the others is checked on the LSGAN map below)
        assert float(obj.critic_loss(real, fake)) == pytest.approx(critic, abs=1e-6)
        assert float(obj.generator_loss(fake, real)) == pytest.approx(gen, abs=1e-6)
        assert obj.reward(fake, real).tolist() == pytest.approx(reward, abs=1e-6)
    assert obj.reward(fake, real).shape == (2,)


def test_lsgan_patch_maps_average_the_squares():
    # one image, map (0.5, 1.5, 1, 1): generator (f - 1)^2 averaged = (0.25 + 0.25 + 0 + 0) / 4 = 0.125
    obj = create("loss", "lsgan")
    fake = torch.tensor([0.5, 1.5, 1.0, 1.0]).view(1, 1, 2, 2)
    assert float(obj.generator_loss(fake)) == pytest.approx(0.125)
    assert obj.reward(fake, fake).tolist() == pytest.approx([-0.125])
    # critic with real = fake: 1/2 [0.125 + mean f^2 = (0.25 + 2.25 + 1 + 1)/4 = 1.125] = 0.625
    assert float(obj.critic_loss(fake, fake)) == pytest.approx(0.625)


def test_lsgan_labels():
    obj = create("loss", {"name": "lsgan", "real_label": 0.9, "fake_label": 0.1})
    # critic 1/2 [mean (r - 0.9)^2 + mean (f - 0.1)^2] = 1/2 [(1.21 + 0.81)/2 + (0.81 + 1.21)/2] = 1.01
    assert float(obj.critic_loss(REAL, FAKE)) == pytest.approx(1.01, abs=1e-6)
    # fakes (1, 0): 1/2 [1.01 + (0.81 + 0.01)/2] = 0.71
    assert float(obj.critic_loss(REAL, torch.tensor([[1.0], [0.0]]))) == pytest.approx(0.71, abs=1e-6)
    # generator mean (f - 0.9)^2 = (0.01 + 3.61)/2 = 1.81
    assert float(obj.generator_loss(FAKE)) == pytest.approx(1.81, abs=1e-6)


def test_relativistic_and_shift_invariant_rewards():
    rals, wgan = create("loss", "ralsgan"), create("loss", "wgan_gp")
    for obj in (rals, wgan):
        base = obj.reward(FAKE, REAL)
        assert torch.allclose(obj.reward(FAKE + 7.0, REAL + 7.0), base)  # a common shift changes nothing
        assert not torch.allclose(obj.reward(FAKE, REAL + 1.0), base)  # the real scores matter
    # RaLSGAN's reward peaks where the fake scores one above the real mean: C(f) = mean C(r) + 1 = 2
    f = torch.linspace(0.0, 4.0, 41).view(-1, 1)
    r = rals.reward(f, REAL)
    assert float(f[r.argmax()]) == pytest.approx(2.0) and float(r.max()) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(Exception, match="real"):
        rals.reward(FAKE, None)


# ------------------------------------------------------------------------------------------- gradient penalty


class SquareCritic(torch.nn.Module):
    """``C(x) = sum(x^2)`` per image (gradient ``2 x``); records the inputs it was called on."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.scale * (x**2).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_with_real_equal_to_fake_is_known_exactly():
    # ||z|| = 1 and 0.25: (2 * 1 - 1)^2 = 1, (2 * 0.25 - 1)^2 = 0.25 -> mean 0.625 (center 1)
    z = torch.zeros(2, 3, 2, 2)
    z[0, 0, 0, 0] = 1.0
    z[1, 1, 1, 1] = 0.25
    critic = SquareCritic()
    torch.manual_seed(0)
    assert float(gradient_penalty(critic, z, z.clone()).detach()) == pytest.approx(0.625, abs=1e-6)
    # center 0: mean (2 ||z||)^2 = (4 + 0.25) / 2
    assert float(gradient_penalty(critic, z, z.clone(), center=0.0).detach()) == pytest.approx(2.125, abs=1e-6)
    # through the objective: gp_weight times the penalty
    obj = create("loss", {"name": "wgan_gp", "gp_weight": 10.0})
    assert float(obj.penalty(critic, z, z.clone()).detach()) == pytest.approx(6.25, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_penalty_interpolates_between_each_real_and_its_fake(seed):
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(4, 3, 5, 5, generator=g)
    fake = torch.rand(4, 3, 5, 5, generator=g) - 0.5
    critic = SquareCritic()
    torch.manual_seed(seed)
    gp = gradient_penalty(critic, real, fake)
    (x_hat,) = critic.seen
    # x_hat = a real + (1 - a) fake, one a in [0, 1] per image: solve a per image, check every coordinate
    d = (real - fake).flatten(1)
    a = ((x_hat.flatten(1) - fake.flatten(1)) * d).sum(1) / (d * d).sum(1)
    assert ((a >= 0) & (a <= 1)).all(), a
    rebuilt = a.view(-1, 1, 1, 1) * real + (1 - a.view(-1, 1, 1, 1)) * fake
    assert torch.allclose(x_hat, rebuilt, atol=1e-6)
    assert a.std() > 0  # a weight per sample, not one for the batch
    norms = 2 * x_hat.flatten(1).norm(dim=1)
    assert float(gp.detach()) == pytest.approx(float(((norms - 1) ** 2).mean()), rel=1e-5)
    gp.backward()  # differentiable w.r.t. the critic's parameters (scale enters the gradient norm linearly)
    assert critic.scale.grad is not None
    expected = float((2 * (norms - 1) * norms).mean())  # d/ds mean((s ||2 x|| - 1)^2) at s = 1
    assert float(critic.scale.grad) == pytest.approx(expected, rel=1e-4)


# ------------------------------------------------------------------------------------------- declarations, sentences

# name -> (accepted score ranges, relativistic, shift-invariant), from each objective's definition
DECLARED = {
    "lsgan": ({"unbounded", "logits", "probabilities"}, False, False),
    "ralsgan": ({"unbounded", "logits"}, True, True),
    "wgan_gp": ({"unbounded", "logits"}, False, True),
    "hinge": ({"unbounded", "logits"}, False, False),
    "nonsaturating": ({"unbounded", "logits"}, False, False),
}


@pytest.mark.parametrize("name", list(DECLARED))
def test_declared_contracts(name):
    from zoo.contracts import contract_of

    c = contract_of("loss", name)
    accepts, relativistic, shift_invariant = DECLARED[name]
    assert set(c.accepts) == accepts
    assert c.gives_reward is True and c.relativistic is relativistic and c.shift_invariant is shift_invariant
    # calling the module is its critic loss (real first)
    obj = create("loss", name)
    assert float(obj(REAL, FAKE)) == pytest.approx(float(obj.critic_loss(REAL, FAKE)))
    assert float(obj(REAL, FAKE)) != pytest.approx(float(obj.critic_loss(FAKE, REAL)))


@pytest.mark.parametrize("name", list(KNOWN))
def test_scores_without_a_batch_dimension_are_refused_by_name(name):
    from zoo.errors import InputError

    obj = create("loss", name)
    scalar = torch.tensor(1.0)
    calls = [
        lambda: obj.critic_loss(scalar, FAKE),
        lambda: obj.critic_loss(REAL, scalar),
        lambda: obj.generator_loss_per_image(scalar, REAL),
        lambda: obj.generator_loss(scalar, REAL),
        lambda: obj.reward(scalar, REAL),
    ]
    if name == "wgan_gp":  # its reward also averages the real scores
        calls.append(lambda: obj.reward(FAKE, scalar))
    if name == "ralsgan":  # the generator loss also scores the real images per image
        calls.append(lambda: obj.generator_loss(FAKE, scalar.view(1, 1).expand(2, 1)[0, 0]))
    for call in calls:
        with pytest.raises(InputError, match=rf"loss '{name}': scores must be a tensor N x 1 .*, got a 0-d tensor\.$"):
            call()


def test_relativistic_generator_loss_needs_real_scores():
    from zoo.errors import InputError

    obj = create("loss", "ralsgan")
    for call in (obj.generator_loss_per_image, obj.generator_loss, obj.reward):
        with pytest.raises(InputError, match="loss 'ralsgan': the relativistic .* needs the critic's scores on real"):
            call(FAKE, None)


def test_wgan_gp_penalty_weight_and_center():
    from zoo.errors import InputError

    z = torch.zeros(2, 3, 2, 2)
    z[0, 0, 0, 0] = 1.0
    z[1, 1, 1, 1] = 0.25  # penalty (center 1): 0.625; center 0: 2.125 (see above)
    for weight, center, expected in ((1.0, 1.0, 0.625), (2.0, 0.0, 4.25), (0.0, 1.0, 0.0)):
        obj = create("loss", {"name": "wgan_gp", "gp_weight": weight, "center": center})
        assert float(obj.penalty(SquareCritic(), z, z.clone()).detach()) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(InputError, match=r"real and fake batches must have the same shape, got \(2, 3, 2, 2\) and"):
        gradient_penalty(SquareCritic(), z, z[:1])
    with pytest.raises(InputError, match="gp_weight must be >= 0, got -1"):
        create("loss", {"name": "wgan_gp", "gp_weight": -1.0})


# ------------------------------------------------------------------------------------------- the RL reward's penalty


def test_reward_penalty_adds_the_mean_over_the_local_patches(tmp_path):
    """A content loss with ``patches: local`` is, per image, its whole-image value plus the mean of its values
    over that image's local-discriminator windows (EnlightenGAN's patch term), each weighted:
    ``penalty = 100 * (mse(x, y) + mean_p mse(x_p, y_p)) + 2 * l1(x, y)``, computed here from the windows."""
    from tests.test_rl_trainer import _raw
    from zoo.recipe import recipe_from_dict
    from zoo.train.rl import RLTrainer

    raw = _raw(tmp_path)
    raw["model"]["discriminators"]["local"] = {
        "network": {"name": "local_patches", "n_patches": 3, "patch_size": 16, "per_image": True},
        "objective": {"name": "lsgan"},
        "weight": 1.0,
    }
    raw["model"]["losses"]["penalty"]["patches"] = "local"
    raw["model"]["losses"]["l1"] = {"loss": {"name": "l1"}, "weight": 2.0}
    trainer = RLTrainer(recipe_from_dict(raw), quiet=True)
    trainer.build()
    try:
        g = torch.Generator().manual_seed(0)
        source = torch.rand(2, 3, 64, 64, generator=g)
        edited = source.clone()
        edited[0, :, :32] += 0.2  # image 0 changed in its top half only: patch values differ from the whole
        edited[1] = 1 - edited[1]
        edited = edited.clamp(0, 1)
        torch.manual_seed(3)
        windows = trainer.side.draw_windows(source)
        total, parts = trainer.content.per_image(source, edited, windows)
        w = windows["local"]  # patches x images x (top, left)
        assert w.shape == (3, 2, 2)
        for i in range(2):
            whole = ((edited[i] - source[i]) ** 2).mean()
            crops = [
                ((edited[i, :, t : t + 16, c : c + 16] - source[i, :, t : t + 16, c : c + 16]) ** 2).mean()
                for t, c in w[:, i].tolist()
            ]
            mse_i = whole + sum(crops) / len(crops)
            l1_i = (edited[i] - source[i]).abs().mean()
            assert float(parts["penalty"][i]) == pytest.approx(float(mse_i), rel=1e-5)
            assert float(parts["l1"][i]) == pytest.approx(float(l1_i), rel=1e-5)
            assert float(total[i]) == pytest.approx(float(100 * mse_i + 2 * l1_i), rel=1e-5)
        # the scalar (training) form: the batch means of the same two terms
        scalar, named = trainer.content.total(source, edited, windows)
        assert named["loss/penalty"] == pytest.approx(float(parts["penalty"].mean()), rel=1e-5)
        assert float(scalar) == pytest.approx(float(total.mean()), rel=1e-5)
    finally:
        trainer._release()
