"""Each built-in component's declared contract (zoo.contracts) matches what the component really does."""

from __future__ import annotations

import pytest
import torch

from zoo.contracts import (
    ContentLoss,
    Dataset,
    Discriminator,
    DiscriminatorContract,
    Generator,
    contract_of,
)
from zoo.errors import InputError, ParameterError
from zoo.registry import create, entries


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


# ----------------------------------------------------------------------------------------------- generators


def test_enlightengan_unet_contract_and_its_smallest_input():
    c = contract_of("generator", {"name": "enlightengan_unet", "base_channels": 2})
    assert c.learning == "backprop" and c.software is None and c.min_size == 1
    g = create("generator", {"name": "enlightengan_unet", "base_channels": 2})
    assert isinstance(g, Generator)
    for size in ((c.min_size, c.min_size), (c.min_size, 5), (9, 3)):
        with torch.no_grad():
            out = g.eval()(torch.rand(1, 3, *size))
        assert out["image"].shape == (1, 3, *size)
        assert 0.0 <= float(out["image"].min()) and float(out["image"].max()) <= 1.0


# ----------------------------------------------------------------------------------------------- patchgan


@pytest.mark.parametrize(("n_layers", "kernel_size"), [(1, 4), (3, 4), (4, 4), (5, 4), (3, 3), (2, 5)])
def test_patchgan_runs_at_its_declared_min_size(n_layers, kernel_size):
    from zoo.discriminators.patchgan import patch_map_size

    block = {"name": "patchgan_nonorm", "ndf": 2, "n_layers": n_layers, "kernel_size": kernel_size}
    c = contract_of("discriminator", block)
    assert c.input_size is None and c.scores == "unbounded"
    d = create("discriminator", block)
    assert isinstance(d, Discriminator)
    side = c.min_size
    scores = d(torch.rand(1, 3, side, side))
    expect = patch_map_size(side, n_layers, kernel_size, d.padding)
    assert scores.shape == (1, 1, expect, expect) and expect >= 1


@pytest.mark.parametrize(("n_layers", "kernel_size", "padding"), [(3, 4, 0), (5, 4, 0), (2, 3, 0), (4, 4, 1)])
def test_min_input_size_is_the_smallest_side_with_a_score_map(n_layers, kernel_size, padding):
    """Without the official padding the convs shrink the image; the bound is tight on both sides."""
    from torch import nn

    from zoo.discriminators.patchgan import min_input_size, patch_map_size

    m = min_input_size(n_layers, kernel_size, padding)
    assert patch_map_size(m, n_layers, kernel_size, padding) >= 1
    assert m == 1 or patch_map_size(m - 1, n_layers, kernel_size, padding) < 1
    # the formula is the real network's: the same conv stack runs at m and fails at m - 1
    layers = [nn.Conv2d(1, 1, kernel_size, 2, padding) for _ in range(n_layers)]
    layers += [nn.Conv2d(1, 1, kernel_size, 1, padding) for _ in range(2)]
    net = nn.Sequential(*layers)
    assert net(torch.rand(1, 1, m, m)).shape[-1] == patch_map_size(m, n_layers, kernel_size, padding)
    if m > 1:
        with pytest.raises(RuntimeError):
            net(torch.rand(1, 1, m - 1, m - 1))


def test_patchgan_use_sigmoid_gives_probabilities_and_leaves_the_default_unchanged():
    torch.manual_seed(0)
    plain = create("discriminator", {"name": "patchgan_nonorm", "ndf": 4, "n_layers": 3})
    squashed = create("discriminator", {"name": "patchgan_nonorm", "ndf": 4, "n_layers": 3, "use_sigmoid": True})
    assert list(plain.state_dict()) == list(squashed.state_dict())  # same weights, same keys
    squashed.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        raw, prob = plain(x), squashed(x)
    assert torch.allclose(prob, torch.sigmoid(raw), atol=1e-6)
    assert float(prob.min()) >= 0.0 and float(prob.max()) <= 1.0
    assert contract_of("discriminator", {"name": "patchgan_nonorm", "use_sigmoid": True}).scores == "probabilities"
    assert contract_of("discriminator", "patchgan_nonorm").scores == "unbounded"
    # the documented parameter counts of the official global and local discriminators are unchanged
    assert sum(p.numel() for p in create("discriminator", "patchgan_nonorm").parameters()) == 11_154_369
    local = create("discriminator", {"name": "patchgan_nonorm", "n_layers": 4, "use_sigmoid": True})
    assert sum(p.numel() for p in local.parameters()) == 6_959_553


# ----------------------------------------------------------------------------------------------- kosugi critic


@pytest.mark.parametrize("image_size", [64, 32])
def test_kosugi_critic_takes_exactly_its_declared_size(image_size):
    block = {"name": "kosugi_critic", "image_size": image_size}
    c = contract_of("discriminator", block)
    assert c.input_size == (image_size, image_size) and c.scores == "unbounded"
    d = create("discriminator", block)
    assert d(torch.rand(2, 3, image_size, image_size)).shape == (2, 1)
    assert c.accepts((image_size, image_size))
    for other in ((image_size + 1, image_size + 1), (image_size, 2 * image_size), (2 * image_size, 2 * image_size)):
        assert not c.accepts(other)
        with pytest.raises(InputError, match=f"N x 3 x {image_size} x {image_size}"):
            d(torch.rand(1, 3, *other))


# ----------------------------------------------------------------------------------------------- local patches


def test_local_patches_contract_follows_patch_size_and_inner_scores():
    c = contract_of("discriminator", "local_patches")
    assert (c.min_size, c.patch_size, c.scores, c.input_size) == (32, 32, "unbounded", None)
    block = {
        "name": "local_patches",
        "patch_size": 24,
        "n_patches": 2,
        "discriminator": {"name": "patchgan_nonorm", "ndf": 2, "n_layers": 3, "use_sigmoid": True},
    }
    c = contract_of("discriminator", block)
    assert (c.min_size, c.patch_size, c.scores) == (24, 24, "probabilities")
    d = create("discriminator", block)
    with torch.no_grad():
        scores = d(torch.rand(2, 3, 24, 30))
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    with pytest.raises(InputError, match="smaller than patch_size=24"):
        d(torch.rand(2, 3, 23, 30))


def test_local_patches_refuses_an_inner_network_that_cannot_take_the_patches():
    block = {"name": "local_patches", "discriminator": {"name": "kosugi_critic"}}
    sentence = (
        "discriminator 'local_patches': its inner kosugi_critic takes 64 x 64 images but patch_size is 32; "
        "set patch_size: 64 or the inner image_size: 32."
    )
    with pytest.raises(ParameterError) as info:
        contract_of("discriminator", block)
    assert str(info.value) == sentence
    with pytest.raises(ParameterError) as info:  # the constructor refuses before building anything
        create("discriminator", block)
    assert str(info.value) == sentence
    # both fixes the sentence offers work, and score 64 x 64 / 32 x 32 patches
    for fixed in (
        {**block, "patch_size": 64, "n_patches": 1},
        {"name": "local_patches", "n_patches": 1, "discriminator": {"name": "kosugi_critic", "image_size": 32}},
    ):
        c = contract_of("discriminator", fixed)
        d = create("discriminator", fixed)
        assert d(torch.rand(2, 3, 70, 70)).shape == (2, 1, 1)
        assert c.patch_size == (64 if "patch_size" in fixed else 32)


def test_local_patches_refuses_an_inner_network_needing_larger_images():
    from zoo.discriminators.local import inner_contract

    class _Big(Discriminator):
        @classmethod
        def contract(cls, params):
            return DiscriminatorContract(min_size=48)

    from zoo.registry import REGISTRIES, register

    register("discriminator", "test_big_inner")(_Big)
    try:
        with pytest.raises(ParameterError, match="images of at least 48 x 48 but patch_size is 32; set patch_size: 48"):
            inner_contract({"name": "test_big_inner"}, 32)
        assert inner_contract("test_big_inner", 48).min_size == 48
    finally:
        REGISTRIES["discriminator"].remove("test_big_inner")


# ----------------------------------------------------------------------------------------------- content losses


@pytest.mark.parametrize("name", ["mse", "l1"])
def test_pixel_losses_are_content_losses_with_per_image_values(name):
    loss = create("loss", name)
    assert isinstance(loss, ContentLoss) and loss.is_adversarial is False
    c = contract_of("loss", name)
    assert c.per_image and not c.needs_pretrained
    a, b = torch.zeros(3, 3, 4, 4), torch.full((3, 3, 4, 4), 0.5)
    b[1] = 0.0
    per = loss.per_image(a, b)
    assert per.shape == (3,) and float(per[1]) == 0.0
    assert float(loss(a, b)) == pytest.approx(float(per.mean()))


def test_sfp_contract_says_whether_it_needs_pretrained_weights():
    from zoo.losses.content import SelfFeaturePreserving

    assert issubclass(SelfFeaturePreserving, ContentLoss) and SelfFeaturePreserving.is_adversarial is False
    on = contract_of("loss", {"name": "self_feature_preserving", "pretrained": True})
    off = contract_of("loss", {"name": "self_feature_preserving", "pretrained": False})
    assert on.needs_pretrained and not off.needs_pretrained and on.per_image


# ----------------------------------------------------------------------------------------------- datasets


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"height": 40, "width": 70},
        {"crop_size": 32},
        {"resize": 20, "crop_size": 40},
        {"load_size": 50},
        {"height": 30, "width": 77, "load_size": 17},
    ],
)
def test_synthetic_contract_is_the_size_of_its_samples(params):
    block = {"name": "synthetic", "size": 2, **params}
    c = contract_of("dataset", block)
    ds = create("dataset", block)
    assert isinstance(ds, Dataset)
    for i in range(2):
        sample = ds[i]
        assert tuple(sample["source"].shape[1:]) == c.image_size
        assert tuple(sample["target"].shape[1:]) == c.image_size


def test_image_folder_contract_comes_from_its_parameters():
    base = {"name": "image_folder", "source": "nowhere/a", "target": "nowhere/b"}
    assert contract_of("dataset", base).image_size == (256, 256)  # its default crop
    assert contract_of("dataset", {**base, "crop_size": None}).image_size is None  # the files' own sizes
    assert contract_of("dataset", {**base, "crop_size": 320}).image_size == (320, 320)
    assert contract_of("dataset", {**base, "crop_size": 320, "resize": 64}).image_size == (64, 64)


# ----------------------------------------------------------------------------------------------- software


@pytest.mark.parametrize("name", [e.name for e in entries("software")])
def test_software_slots_equal_the_built_software_names(name):
    from zoo.editing.software import software_slots

    assert software_slots(name) == create("software", name).names
    assert software_slots({"name": name}) == create("software", {"name": name}).names


def test_software_slots_of_editor_chains_and_built_softwares():
    from zoo.editing.software import Software, software_slots

    for ops in (["exposure", "gamma"], ["tone_curve", "saturation", "white_balance"], ["clarity"]):
        block = {"name": "editor_chain", "operators": ops}
        built = create("software", block)
        assert software_slots(block) == built.names
        assert software_slots(built) == built.names
    assert software_slots({"name": "editor_chain", "operators": ["tone_curve"]})[0].startswith("tone_curve.")

    class _Undeclared(Software):
        def __init__(self) -> None:
            super().__init__(["exposure"], name="test_undeclared")

    from zoo.registry import REGISTRIES, register

    register("software", "test_undeclared")(_Undeclared)
    try:
        with pytest.raises(ParameterError, match="does not declare its operators"):
            software_slots("test_undeclared")
    finally:
        REGISTRIES["software"].remove("test_undeclared")
