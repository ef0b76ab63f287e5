"""The zoo's inference path (``zoo.layers.fuse.prepare_for_inference``, used by ``zoo enhance``): exactness."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.generators.enlightengan import EnlightenGANUNet
from zoo.inference import prepare_for_inference as enhance_prepare
from zoo.layers.blocks import ConvActNorm
from zoo.layers.fuse import (
    FusedConvAct,
    FusedConvActPair,
    PackedConv2d,
    fuse_for_inference,
    prepare_for_inference,
)

MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def _randomise_bn(model: nn.Module, seed: int = 0, negative: bool = False) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.6 - 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    if negative:  # one block with sign flips: its pair must fall back to the plain path
        model.stages[1][0].norm.weight.data[::2] *= -1
    return model.eval()


@pytest.fixture(scope="module")
def unet() -> EnlightenGANUNet:
    torch.manual_seed(0)
    return _randomise_bn(EnlightenGANUNet(base_channels=4))


@pytest.mark.parametrize("shape", [(1, 3, 45, 61), (2, 3, 16, 16), (1, 3, 33, 80), (1, 3, 7, 5)])
def test_prepared_unet_equals_eager(unet, shape):
    prepared = prepare_for_inference(unet)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = unet(x)
        out = prepared(x.contiguous(memory_format=torch.channels_last))
    for key in ("image", "latent", "attention"):
        assert out[key].shape == ref[key].shape
        assert float((out[key] - ref[key]).abs().max()) < 1e-4, key


def test_prepared_unet_structure_and_original_untouched(unet):
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    prepared = prepare_for_inference(unet)
    pairs = [m for m in prepared.modules() if isinstance(m, FusedConvActPair)]
    assert len(pairs) == 9  # every DoubleConv: the shift of its first block went into the second conv
    assert not any(isinstance(m, nn.BatchNorm2d) for m in prepared.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in unet.modules())
    assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())
    assert getattr(prepared, "zoo_fused", False) and not prepared.training
    # PackedConv2d keeps the conv's parameter names: the prepared copy has the fused model's state-dict keys
    assert set(prepared.state_dict()) == set(fuse_for_inference(unet).state_dict())
    if MKLDNN:
        assert isinstance(prepared.reduce[0], PackedConv2d) and isinstance(prepared.head, PackedConv2d)
        assert all(m.packed is not None for m in prepared.modules() if isinstance(m, FusedConvAct))


def test_negative_bn_scale_falls_back_and_stays_exact():
    torch.manual_seed(2)
    model = _randomise_bn(EnlightenGANUNet(base_channels=4), seed=3, negative=True)
    prepared = prepare_for_inference(model)
    assert not isinstance(prepared.stages[1], FusedConvActPair)  # sign flips: no shift folding there
    assert isinstance(prepared.stages[0], FusedConvActPair)
    x = torch.rand(1, 3, 40, 52)
    with torch.inference_mode():
        assert torch.allclose(
            prepared(x.contiguous(memory_format=torch.channels_last))["image"], model(x)["image"], atol=1e-5
        )


def test_pair_ring_correction_is_exact_on_every_border_pixel():
    torch.manual_seed(4)
    net = nn.Sequential(ConvActNorm(5, 6, 3, 0.2), ConvActNorm(6, 7, 3, 0.1))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-2, 2)  # large shifts: a wrong ring would show at once
            m.running_var.uniform_(0.2, 2)
            m.bias.data.uniform_(-1, 1)
    net.eval()
    fused = fuse_for_inference(nn.Sequential(net))
    pair = fused[0]
    assert isinstance(pair, FusedConvActPair)
    for hw in [(3, 3), (4, 9), (12, 5)]:
        x = torch.randn(2, 5, *hw).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            ref = net(x)
            out = pair(x)
            plain = pair[1](pair[0](x))  # the unpacked blocks keep the plain semantics
        assert torch.allclose(out, ref, atol=1e-5), hw
        assert torch.allclose(plain, ref, atol=1e-5), hw
        # without the ring correction the borders would be off: the test can see a wrong fold
        assert float((out[..., 0, :] - ref[..., 0, :]).abs().max()) < 1e-5


def test_pair_and_packed_conv_fall_back_with_autograd(unet):
    prepared = prepare_for_inference(unet)
    x = torch.rand(1, 3, 32, 48)
    with torch.enable_grad():
        out = prepared(x)["image"]
    with torch.inference_mode():
        ref = unet(x)["image"]
    assert torch.allclose(out.detach(), ref, atol=1e-5)


def test_pair_too_small_maps_take_the_plain_path():
    torch.manual_seed(5)
    net = _randomise_bn(nn.Sequential(ConvActNorm(3, 4, 3), ConvActNorm(4, 4, 3)).eval())
    pair = fuse_for_inference(nn.Sequential(net))[0]
    x = torch.randn(1, 3, 2, 1)
    with torch.inference_mode():
        assert torch.allclose(pair(x), net(x), atol=1e-5)


def test_zoo_enhance_uses_the_prepared_path(unet):
    prepared = enhance_prepare(unet)
    assert getattr(prepared, "zoo_fused", False)
    assert any(isinstance(m, FusedConvActPair) for m in prepared.modules())
    if MKLDNN:
        assert any(isinstance(m, PackedConv2d) for m in prepared.modules())


def test_example_warms_up_and_returns_the_same_model(unet):
    prepared = prepare_for_inference(unet, example=torch.rand(1, 3, 20, 20))
    x = torch.rand(1, 3, 21, 19)
    with torch.inference_mode():
        assert torch.allclose(prepared(x)["image"], unet(x)["image"], atol=1e-5)
