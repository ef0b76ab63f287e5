"""EnlightenGAN's generator: architecture, the official checkpoint format, outputs, and BatchNorm folding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.errors import DataError, InputError
from zoo.generators.enlightengan import EnlightenGANUNet, attention_map, official_key
from zoo.layers.fuse import FusedConvAct, fuse_for_inference
from zoo.registry import create

torch.set_num_threads(1)
C = 8  # base channels for the quick tests (the released model has 32)


def official_state_dict(c: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in the released 200_net_G_A.pth format (sid_unet_resize, written independently)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name, cout, cin, k=3):
        sd[f"module.{name}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (1.0 / (cin * k * k)) ** 0.5
        sd[f"module.{name}.bias"] = torch.randn(cout, generator=g) * 0.05

    def bn(name, ch):  # torch 0.3.1: no num_batches_tracked
        sd[f"module.{name}.weight"] = 1 + 0.2 * torch.randn(ch, generator=g)
        sd[f"module.{name}.bias"] = 0.1 * torch.randn(ch, generator=g)
        sd[f"module.{name}.running_mean"] = 0.1 * torch.randn(ch, generator=g)
        sd[f"module.{name}.running_var"] = 0.5 + torch.rand(ch, generator=g)

    enc = [(4, c), (c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c), (8 * c, 16 * c)]
    for i, (cin, cout) in enumerate(enc, start=1):
        conv(f"conv{i}_1", cout, cin), bn(f"bn{i}_1", cout), conv(f"conv{i}_2", cout, cout), bn(f"bn{i}_2", cout)
    for i, cout in zip(range(6, 10), (8 * c, 4 * c, 2 * c, c), strict=True):
        conv(f"deconv{i - 1}", cout, 2 * cout)
        conv(f"conv{i}_1", cout, 2 * cout), bn(f"bn{i}_1", cout), conv(f"conv{i}_2", cout, cout)
        if i < 9:
            bn(f"bn{i}_2", cout)
    conv("conv10", 3, c, k=1)
    return sd


def official_forward(sd: dict[str, torch.Tensor], x01: torch.Tensor) -> torch.Tensor:
    """The released forward (use_norm=1, self_attention, times_residual, skip=1) from the flat official names."""
    p = {k[len("module.") :]: v for k, v in sd.items()}
    inp = x01 * 2 - 1
    r, g_, b = inp[:, 0:1] + 1, inp[:, 1:2] + 1, inp[:, 2:3] + 1
    gray = 1.0 - (0.299 * r + 0.587 * g_ + 0.114 * b) / 2.0  # the official data loader's A_gray

    def pad(t):
        h, w = t.shape[2], t.shape[3]
        wr, hr = w % 16, h % 16
        left = int((16 - wr) / 2) if wr else 0
        right = int(16 - wr - left) if wr else 0
        top = int((16 - hr) / 2) if hr else 0
        bottom = int(16 - hr - top) if hr else 0
        return F.pad(t, (left, right, top, bottom), mode="reflect"), (left, right, top, bottom)

    inp, pads = pad(inp)
    gray, _ = pad(gray)
    grays = [gray]
    for _ in range(4):
        grays.append(F.max_pool2d(grays[-1], 2))

    def block(name, bn_name, t):
        t = F.leaky_relu(F.conv2d(t, p[f"{name}.weight"], p[f"{name}.bias"], padding=1), 0.2)
        if bn_name is None:
            return t
        return F.batch_norm(
            t,
            p[f"{bn_name}.running_mean"],
            p[f"{bn_name}.running_var"],
            p[f"{bn_name}.weight"],
            p[f"{bn_name}.bias"],
            training=False,
            eps=1e-5,
        )

    x = block("conv1_1", "bn1_1", torch.cat((inp, gray), 1))
    skips = []
    for i in range(1, 5):
        if i > 1:
            x = block(f"conv{i}_1", f"bn{i}_1", x)
        conv_i = block(f"conv{i}_2", f"bn{i}_2", x)
        skips.append(conv_i)
        x = F.max_pool2d(conv_i, 2)
    x = block("conv5_1", "bn5_1", x) * grays[4]
    x = block("conv5_2", "bn5_2", x)
    for i in range(6, 10):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)  # torch 0.3.1 upsample
        up = F.conv2d(x, p[f"deconv{i - 1}.weight"], p[f"deconv{i - 1}.bias"], padding=1)
        x = torch.cat([up, skips[9 - i] * grays[9 - i]], 1)
        x = block(f"conv{i}_1", f"bn{i}_1", x)
        x = block(f"conv{i}_2", f"bn{i}_2" if i < 9 else None, x)
    latent = F.conv2d(x, p["conv10.weight"], p["conv10.bias"]) * gray
    out = latent + inp
    left, right, top, bottom = pads
    out = out[:, :, top : out.shape[2] - bottom, left : out.shape[3] - right]
    return ((out + 1) / 2).clamp(0, 1)  # the official tensor2im clips to [0, 255]


def test_released_architecture_size_and_names():
    model = create("generator", "enlightengan_unet")
    assert sum(p.numel() for p in model.parameters()) == 8_636_675
    names = {official_key(k).split(".")[0] for k in model.state_dict()}
    official = {k.split(".")[1] for k in official_state_dict(2)}
    assert names == official
    assert "deconv5" in names and "conv10" in names and "bn9_2" not in names


def test_official_checkpoint_gives_the_official_output(tmp_path):
    sd = official_state_dict(C)
    assert not any("num_batches_tracked" in k for k in sd)
    file = tmp_path / "200_net_G_A.pth"
    torch.save(sd, file)
    model = EnlightenGANUNet(base_channels=C, weights=str(file)).eval()
    x = torch.rand(2, 3, 37, 50, generator=torch.Generator().manual_seed(1))  # not multiples of 16: padding
    with torch.no_grad():
        ours = model(x)["image"]
        ref = official_forward(sd, x)
    assert ours.shape == x.shape
    assert torch.allclose(ours, ref, atol=1e-5), float((ours - ref).abs().max())
    # loading through the method as well, into a fresh model
    other = EnlightenGANUNet(base_channels=C)
    other.load_weights(file)
    assert torch.equal(other.state_dict()["stages.0.0.conv.weight"], sd["module.conv1_1.weight"])


def test_official_loader_errors(tmp_path):
    sd = official_state_dict(C)
    model = EnlightenGANUNet(base_channels=C)
    missing = dict(sd)
    missing.pop("module.bn3_1.running_var")
    torch.save(missing, tmp_path / "a.pth")
    with pytest.raises(DataError, match="missing stages.2.0.norm.running_var"):
        model.load_weights(tmp_path / "a.pth")
    extra = dict(sd, **{"module.conv11.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "b.pth")
    with pytest.raises(DataError, match="conv11"):
        model.load_weights(tmp_path / "b.pth")
    torch.save(sd, tmp_path / "c.pth")
    with pytest.raises(DataError, match="do not fit this architecture"):
        EnlightenGANUNet(base_channels=4).load_weights(tmp_path / "c.pth")
    with pytest.raises(DataError, match="does not exist"):
        model.load_weights(tmp_path / "none.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a readable weights file") as info:
        model.load_weights(tmp_path / "junk.pth")
    assert "weights_only=False" not in str(info.value)  # torch's "load it unsafely" advice is not passed on


def test_outputs_ranges_and_attention():
    torch.manual_seed(0)
    model = EnlightenGANUNet(base_channels=C).eval()
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        out = model(x)
    assert set(out) == {"image", "attention", "latent"}
    assert out["image"].shape == x.shape and out["latent"].shape == x.shape and out["attention"].shape == (2, 1, 21, 30)
    assert out["image"].min() >= 0 and out["image"].max() <= 1
    assert torch.allclose(out["attention"], 1 - (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]))
    # output = latent + input in [-1, 1] units, before clamping
    assert torch.allclose(out["image"], ((out["latent"] + 2 * x - 1 + 1) / 2).clamp(0, 1), atol=1e-6)
    # a white image gets no attention and passes through unchanged
    white = torch.ones(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(white)["image"], white, atol=1e-6)
    assert torch.allclose(attention_map(white), torch.zeros(1, 1, 16, 16), atol=1e-6)
    # tiny images (reflection impossible) still work
    with torch.no_grad():
        assert model(torch.rand(1, 3, 5, 3))["image"].shape == (1, 3, 5, 3)


def test_training_mode_is_unclamped_and_differentiable():
    torch.manual_seed(0)
    model = EnlightenGANUNet(base_channels=C)
    with torch.no_grad():
        model.head.bias.fill_(5.0)  # push outputs above 1
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    img = model(x)["image"]
    assert img.max() > 1  # the official discriminators see the unclamped output
    img.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert EnlightenGANUNet(base_channels=C, clamp_in_training=True)(x)["image"].max() <= 1


def test_large_photo_path_and_align_corners():
    torch.manual_seed(0)
    model = EnlightenGANUNet(base_channels=C, max_width=40).eval()
    x = torch.rand(1, 3, 30, 50)
    with torch.no_grad():
        big = model(x)
        assert big["image"].shape == x.shape and big["attention"].shape == (1, 1, 30, 50)
        model.max_width = None
        full = model(x)["image"]
        assert not torch.allclose(full, big["image"])
        model.align_corners = False
        assert not torch.allclose(full, model(x)["image"])


def test_bad_input_is_a_sentence():
    model = EnlightenGANUNet(base_channels=4)
    with pytest.raises(InputError, match="N x 3 x H x W"):
        model(torch.rand(1, 1, 16, 16))
    with pytest.raises(InputError, match="float images"):
        model(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(InputError, match="base_channels"):
        EnlightenGANUNet(base_channels=0)


def test_fuse_for_inference_matches_eval_and_is_channels_last():
    torch.manual_seed(0)
    model = EnlightenGANUNet(base_channels=C)
    model.load_weights(official_state_dict(C, seed=3) | {"module.bn2_1.weight": -torch.rand(2 * C) - 0.1})  # negative
    model.eval()
    fused = fuse_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, FusedConvAct) for m in fused.modules()) == 18
    assert fused.stages[0][0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 45, 61)
    with torch.inference_mode():
        ref = model(x)["image"]
        out = fused(x.contiguous(memory_format=torch.channels_last))["image"]
        out_plain = fused(x)["image"]
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(out_plain, ref, atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched


def test_fuse_folds_plain_conv_bn_pairs():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU())
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
    net[1].weight.data.uniform_(-1, 1)
    net.eval()
    fused = fuse_for_inference(net, channels_last=False)
    assert isinstance(fused[1], torch.nn.Identity)
    x = torch.rand(2, 3, 9, 7)
    with torch.no_grad():
        assert torch.allclose(fused(x), net(x), atol=1e-5)


def test_inference_concat_buffer_equals_the_autograd_path():
    """Without autograd the decoder writes the gated skip straight into its concatenation; same numbers."""
    torch.manual_seed(3)
    g = create("generator", {"name": "enlightengan_unet"}).eval()
    x = torch.rand(2, 3, 70, 93)
    with torch.enable_grad():
        expected = g(x.requires_grad_(True))["image"].detach()
    with torch.inference_mode():
        got = g(x.detach())["image"]
        got_cl = g(x.detach().contiguous(memory_format=torch.channels_last))["image"]
    assert torch.equal(got, expected)
    torch.testing.assert_close(got_cl, expected, rtol=0, atol=1e-6)
