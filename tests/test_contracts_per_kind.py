"""Contract tests over the registry, one family per kind (timm style): a new component is tested by registering.

- every discriminator runs forward and backward at the sizes its contract declares (and refuses none of them);
- every generator honours the output contract: a dict whose ``"image"`` has the input's shape, in [0, 1];
  slider generators also give ``"params"`` ``N x K`` inside their software's declared ranges, and their image
  is the software applied with those parameters;
- every adversarial objective gives a scalar critic loss and generator loss, a per-image reward ``(N,)``, and,
  when its contract says ``shift_invariant``, a critic loss and a reward unchanged by a common shift of the scores;
- every content loss gives ``(N,)`` per image, 0 for identical images, and a scalar equal to their mean;
- every editor and software declares ranges that hold its neutral value, is the identity there, and maps the
  RL levels onto its ranges (``u = 0`` -> neutral, ``u = +-1`` -> the ends).

Components with required constructor parameters get them from ``tests/conftest.py`` ``REQUIRED_TEST_PARAMS``.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import REQUIRED_TEST_PARAMS, SHARED
from zoo.contracts import (
    AdversarialContract,
    ContentLossContract,
    DiscriminatorContract,
    GeneratorContract,
    contract_of,
)
from zoo.registry import REGISTRIES, create, entries

pytestmark = pytest.mark.usefixtures("one_thread")


def names(kind: str) -> list[str]:
    """Every registered name of ``kind``: the generated index and anything registered at run time."""
    return sorted({e.name for e in entries(kind, plugins=False)} | set(REGISTRIES[kind].names()))


# smaller stand-ins where the default is slow to build (a random VGG16 takes ~15 s here); same code paths
FAST = {("loss", "self_feature_preserving"): {"backbone": "test_resnet", "layer": "layer1", "skip": []}}


def block(kind: str, name: str) -> dict:
    extra = {**REQUIRED_TEST_PARAMS.get((kind, name), {}), **FAST.get((kind, name), {})}
    shared = SHARED if SHARED.is_dir() else None
    params = {k: (v(shared) if callable(v) else v) for k, v in extra.items()}
    return {"name": name, **params}


def build(kind: str, name: str):
    torch.manual_seed(0)
    return create(kind, block(kind, name))


# ------------------------------------------------------------------------------------------- discriminators


def _sizes(c: DiscriminatorContract) -> list[tuple[int, int]]:
    if c.input_size is not None:
        return [tuple(c.input_size)]
    m = max(int(c.min_size), 1)
    return [(m, m), (m + 5, m + 12)]  # the smallest side it accepts, and a non-square larger one


@pytest.mark.parametrize("name", names("discriminator"))
def test_discriminator_forward_backward_at_declared_sizes(name):
    c = contract_of("discriminator", block("discriminator", name))
    assert isinstance(c, DiscriminatorContract)
    d = build("discriminator", name)
    d.train()
    for h, w in _sizes(c):
        assert c.accepts((h, w))
        x = torch.rand(2, 3, h, w, requires_grad=True)
        scores = d(x)
        assert scores.shape[0] == 2, f"{name} at {h}x{w}: scores {tuple(scores.shape)}"
        assert torch.isfinite(scores).all()
        if c.scores == "probabilities":
            assert scores.min() >= 0 and scores.max() <= 1
        d.zero_grad(set_to_none=True)
        (scores * torch.randn_like(scores)).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        grads = [p.grad for p in d.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), f"{name}: parameter grads"
    if c.input_size is not None:  # a fixed-size critic says so at other sizes
        assert not c.accepts((c.input_size[0] + 1, c.input_size[1]))
    else:
        assert not c.accepts((c.min_size - 1, c.min_size + 8)) or c.min_size <= 1


# ------------------------------------------------------------------------------------------- generators


@pytest.mark.parametrize("name", names("generator"))
def test_generator_output_contract(name):
    c = contract_of("generator", block("generator", name))
    assert isinstance(c, GeneratorContract)
    g = build("generator", name)
    g.eval()
    side = max(c.min_size, c.thumbnail_size or 0, 48)
    x = torch.rand(2, 3, side, side + 8)
    x[1] *= 0.3  # a dark image
    with torch.no_grad():
        out = g(x)
    assert isinstance(out, dict) and "image" in out, f"{name}: returned {type(out).__name__}"
    img = out["image"]
    assert img.shape == x.shape and img.dtype == x.dtype
    assert torch.isfinite(img).all() and img.min() >= 0 and img.max() <= 1
    if c.has_sliders:
        software = g.software
        assert software.software_name == c.software
        assert c.num_params == software.K
        p = out["params"]
        assert p.shape == (2, software.K)
        assert (p >= software.low - 1e-6).all() and (p <= software.high + 1e-6).all()
        with torch.no_grad():  # the image is the software applied with the returned parameters
            assert torch.allclose(img, software.apply(x, p), atol=1e-5)


# ------------------------------------------------------------------------------------------- losses


def loss_contracts() -> tuple[list[str], list[str]]:
    adversarial, content = [], []
    for n in names("loss"):
        c = contract_of("loss", block("loss", n))
        (adversarial if isinstance(c, AdversarialContract) else content).append(n)
    return adversarial, content


ADVERSARIAL, CONTENT = loss_contracts()


def test_loss_kinds_are_split():
    assert {"lsgan", "ralsgan", "wgan_gp", "hinge"} <= set(ADVERSARIAL)
    assert {"mse", "l1", "anchor_mse", "self_feature_preserving"} <= set(CONTENT)


@pytest.mark.parametrize("shape", [(4, 1), (4, 1, 3, 5)], ids=["per-image", "patch-map"])
@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_objective_contract(name, shape):
    c = contract_of("loss", block("loss", name))
    obj = build("loss", name)
    g = torch.Generator().manual_seed(1)
    real = torch.randn(*shape, generator=g) + 0.5
    fake = torch.randn(*shape, generator=g) - 0.5
    loss = obj.critic_loss(real, fake)
    assert loss.dim() == 0 and torch.isfinite(loss)
    gl = obj.generator_loss(fake, real)
    assert gl.dim() == 0 and torch.isfinite(gl)
    if c.gives_reward:
        r = obj.reward(fake, real)
        assert r.shape == (shape[0],) and torch.isfinite(r).all()
        better = obj.reward(fake + 1.0, real)  # fakes the critic finds more real earn more
        assert (better > r).all(), f"{name}: reward {r.tolist()} -> {better.tolist()}"
    if c.shift_invariant:
        for shift in (-3.0, 2.5):
            assert torch.allclose(obj.critic_loss(real + shift, fake + shift), loss, atol=1e-5)
            if c.gives_reward:
                assert torch.allclose(obj.reward(fake + shift, real + shift), obj.reward(fake, real), atol=1e-5)
    # a differentiable loss for both players
    fake_p = fake.clone().requires_grad_(True)
    obj.generator_loss(fake_p, real).backward()
    assert fake_p.grad is not None and fake_p.grad.abs().sum() > 0


@pytest.mark.parametrize("name", CONTENT)
def test_content_loss_contract(name):
    c = contract_of("loss", block("loss", name))
    assert isinstance(c, ContentLossContract)
    loss = build("loss", name)
    g = torch.Generator().manual_seed(2)
    src = torch.rand(3, 3, 32, 32, generator=g)
    out = (src + 0.2 * torch.rand(3, 3, 32, 32, generator=g)).clamp(0, 1)
    out[2] = loss.target(src[2:3])[0]  # the source itself for most; anchor_mse: its anchor's enhancement
    with torch.no_grad():
        scalar = loss(src, out)
        if c.per_image:
            per = loss.per_image(src, out)
            assert per.shape == (3,)
            assert float(per[2]) == pytest.approx(0.0, abs=1e-7)
            assert (per[:2] > 0).all()
            assert float(scalar) == pytest.approx(float(per.mean()), rel=1e-5)
    assert scalar.dim() == 0


# ------------------------------------------------------------------------------------------- editors, softwares


def _specs(kind: str, obj):
    return list(obj.params) if kind == "editor" else list(obj.specs)


EDIT = [("editor", n) for n in names("editor")] + [("software", n) for n in names("software")]


@pytest.mark.parametrize("kind,name", EDIT, ids=[f"{k}:{n}" for k, n in EDIT])
def test_editing_ranges_neutral_and_levels(kind, name):
    obj = build(kind, name)
    specs = _specs(kind, obj)
    assert specs, f"{kind} {name!r} declares no parameters"
    for s in specs:
        assert s.low < s.high and s.low <= s.neutral <= s.high, s
        u = torch.tensor([-1.0, 0.0, 1.0])
        assert torch.allclose(s.from_unit(u), torch.tensor([s.low, s.neutral, s.high]), rtol=1e-6, atol=1e-6), s
        inside = torch.tensor([0.5, -0.5] if s.low < s.neutral else [0.5, 0.25])  # u < 0 needs room below
        assert torch.allclose(s.to_unit(s.from_unit(inside)), inside, atol=1e-6), s
    x = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(3))
    neutral = obj.neutral(2)
    assert neutral.shape == (2, len(specs))
    out = obj(x, neutral) if kind == "editor" else obj.apply(x, neutral)
    assert (out - x).abs().max() <= 1e-3  # the reference's own logit-clamp residue (see the properties file)
    if kind == "software":
        levels = torch.tensor([[0] * obj.K, [2] * obj.K, [4] * obj.K])
        p = obj.levels_to_params(levels, 5)
        assert torch.allclose(p[0], obj.low) and torch.allclose(p[2], obj.high)
        assert torch.allclose(p[1], obj.neutral(1)[0])
        back = obj.params_to_levels(p, 5)
        # a range whose neutral value is its low end (bw_mix) maps the whole lower half of the levels onto it
        two_sided = torch.tensor([s.low < s.neutral for s in specs])
        assert torch.equal(back[:, two_sided], levels[:, two_sided])
        assert torch.equal(back[:, ~two_sided], levels[:, ~two_sided].clamp(min=2))
