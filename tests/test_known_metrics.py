"""Known values for the metrics and the content losses, worked out by hand or from the formula written out here.

- PSNR: constant offsets (10 log10(1 / d^2)), per channel and per image, on RGB and on MATLAB's Y.
- SSIM: uniform images in closed form (the luminance term alone), and random pairs against a NumPy SSIM
  written out from Wang et al. 2004 (11 x 11 Gaussian, sigma 1.5, K1 = 0.01, K2 = 0.03, valid windows).
- Delta E, colourfulness, entropy and mean brightness on images whose value follows by hand.
- mse / l1 per image and as a scalar; self-feature-preserving on a tiny random timm backbone, against the
  features computed here layer by layer and instance-normalised by the formula.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.metrics.fullref import delta_e76, psnr, ssim, to_y
from zoo.metrics.nr import colorfulness, gray_entropy, mean_brightness
from zoo.registry import create

pytestmark = pytest.mark.usefixtures("one_thread")


def img(*rgb: float, h: int = 4, w: int = 4, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(rgb, dtype=dtype).view(1, 3, 1, 1).expand(1, 3, h, w).contiguous()


# ------------------------------------------------------------------------------------------- PSNR


def test_psnr_of_constant_offsets_by_hand():
    ref = img(0.5, 0.5, 0.5)
    assert float(psnr(ref + 0.1, ref)[0]) == pytest.approx(20.0, abs=1e-6)  # mse 0.01
    assert float(psnr(ref - 0.01, ref)[0]) == pytest.approx(40.0, abs=1e-5)  # mse 1e-4
    # one channel off by 0.1: mse = 0.01 / 3 -> 10 log10(300) = 24.7712
    one = ref.clone()
    one[:, 1] += 0.1
    assert float(psnr(one, ref)[0]) == pytest.approx(10 * math.log10(300), abs=1e-5)
    assert float(psnr(one, ref)[0]) == pytest.approx(24.7712, abs=1e-4)
    # half of the pixels off by 0.2: mse = 0.04 / 2 -> 10 log10(50) = 16.9897
    half = ref.clone()
    half[..., :2] += 0.2
    assert float(psnr(half, ref)[0]) == pytest.approx(16.9897, abs=1e-4)


def test_psnr_is_per_image():
    ref = torch.full((3, 3, 4, 4), 0.5, dtype=torch.float64)
    pred = ref + torch.tensor([0.1, 0.05, 0.0], dtype=torch.float64).view(3, 1, 1, 1)
    out = psnr(pred, ref)
    assert out.shape == (3,)
    assert float(out[0]) == pytest.approx(20.0, abs=1e-6)
    assert float(out[1]) == pytest.approx(20 * math.log10(20), abs=1e-5)  # 26.0206
    assert math.isinf(float(out[2]))


def test_psnr_on_matlab_y():
    # a grey offset d moves Y by d * (65.481 + 128.553 + 24.966) / 255 = d * 219 / 255
    ref = img(0.4, 0.4, 0.4)
    expected = -20 * math.log10(0.1 * 219 / 255)  # 21.3205
    assert float(psnr(ref + 0.1, ref, channel="y")[0]) == pytest.approx(expected, abs=1e-5)
    # a pure blue offset: Y moves by 0.1 * 24.966 / 255
    blue = ref.clone()
    blue[:, 2] += 0.1
    assert float(psnr(blue, ref, channel="y")[0]) == pytest.approx(-20 * math.log10(0.1 * 24.966 / 255), abs=1e-5)
    y = to_y(img(1.0, 0.0, 0.0, h=1, w=1))
    assert float(y) == pytest.approx((16 + 65.481) / 255, abs=1e-9)
    assert float(to_y(img(1.0, 1.0, 1.0, h=1, w=1))) == pytest.approx(235 / 255, abs=1e-9)
    assert float(to_y(img(0.0, 0.0, 0.0, h=1, w=1))) == pytest.approx(16 / 255, abs=1e-9)


# ------------------------------------------------------------------------------------------- SSIM

C1, C2 = 0.01**2, 0.03**2


def ssim_numpy(x: np.ndarray, y: np.ndarray, win: int = 11, sigma: float = 1.5) -> float:
    """Wang et al. (2004) SSIM of two ``C x H x W`` images in [0, 1], written out: Gaussian-weighted local
    means, variances and covariance over every full window (no padding), averaged over pixels and channels."""
    r = np.arange(win) - win // 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    g /= g.sum()
    w2 = np.outer(g, g)

    def filt(a):
        v = np.lib.stride_tricks.sliding_window_view(a, (win, win), axis=(-2, -1))
        return (v * w2).sum(axis=(-2, -1))

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx**2
    syy = filt(y * y) - my**2
    sxy = filt(x * y) - mx * my
    num = (2 * mx * my + C1) * (2 * sxy + C2)
    den = (mx**2 + my**2 + C1) * (sxx + syy + C2)
    return float((num / den).mean())


def test_ssim_of_uniform_images_is_the_luminance_term():
    # no structure: SSIM = (2 a b + C1) / (a^2 + b^2 + C1); a = 0.5, b = 0.3: 0.3001 / 0.3401 = 0.882388
    out = ssim(img(0.5, 0.5, 0.5, h=12, w=12), img(0.3, 0.3, 0.3, h=12, w=12))
    assert float(out[0]) == pytest.approx((0.3 + C1) / (0.34 + C1), abs=1e-6)
    assert float(out[0]) == pytest.approx(0.882388, abs=1e-6)
    # per channel, then averaged: (1 + 0.882388 + lum(0.2, 0.6)) / 3
    lum = (2 * 0.2 * 0.6 + C1) / (0.04 + 0.36 + C1)
    mixed = ssim(img(0.5, 0.5, 0.2, h=12, w=12), img(0.5, 0.3, 0.6, h=12, w=12))
    assert float(mixed[0]) == pytest.approx((1 + (0.3 + C1) / (0.34 + C1) + lum) / 3, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_the_formula_written_out(seed):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(2, 3, 16, 20, generator=g, dtype=torch.float64)
    pred = (ref + 0.15 * torch.randn(2, 3, 16, 20, generator=g, dtype=torch.float64)).clamp(0, 1)
    pred[1] = pred[1] * 0.5  # a darker second image
    out = ssim(pred, ref)
    for i in range(2):
        expected = ssim_numpy(pred[i].numpy(), ref[i].numpy())
        assert float(out[i]) == pytest.approx(expected, abs=1e-5), i
    assert float(out[1]) < float(out[0]) < 1.0
    # on Y: the same formula on MATLAB's luma channel
    y_expected = ssim_numpy(to_y(pred[:1])[0].numpy(), to_y(ref[:1])[0].numpy())
    assert float(ssim(pred[:1], ref[:1], channel="y")[0]) == pytest.approx(y_expected, abs=1e-5)


# ------------------------------------------------------------------------------------------- colour and statistics


def _lab_l(v: float) -> float:
    """CIE L* of an sRGB grey v (D65: Y = linear v)."""
    lin = v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    f = lin ** (1 / 3) if lin > (6 / 29) ** 3 else lin / (3 * (6 / 29) ** 2) + 4 / 29
    return 116 * f - 16


def test_delta_e_of_greys_is_the_lightness_difference():
    # greys have a* = b* = 0: Delta E = |L1 - L2|; white - black = 100; grey 0.5 has L* = 53.389
    assert float(delta_e76(img(1.0, 1.0, 1.0), img(0.0, 0.0, 0.0))[0]) == pytest.approx(100.0, abs=1e-2)
    assert _lab_l(0.5) == pytest.approx(53.389, abs=1e-3)
    out = delta_e76(img(0.5, 0.5, 0.5), img(0.2, 0.2, 0.2))
    assert float(out[0]) == pytest.approx(_lab_l(0.5) - _lab_l(0.2), abs=1e-2)
    # the mean over pixels: half the pixels white vs black, half equal -> 50
    a = img(0.0, 0.0, 0.0)
    b = a.clone()
    b[..., :2] = 1.0
    assert float(delta_e76(a, b)[0]) == pytest.approx(50.0, abs=1e-2)
    # batch: one value per image
    both = delta_e76(torch.cat([img(1.0, 1.0, 1.0), img(0.5, 0.5, 0.5)]), torch.cat([img(0.0, 0.0, 0.0)] * 2))
    assert both.shape == (2,)
    assert float(both[1]) == pytest.approx(_lab_l(0.5), abs=1e-2)


def test_colorfulness_two_pixel_image_by_hand():
    # pixels (255, 0, 0) and (0, 0, 0) on 0..255: rg = (255, 0), yb = (127.5, 0)
    # sigma_rgyb = sqrt(var(rg) + var(yb)) = sqrt(127.5^2 + 63.75^2); mu_rgyb = sqrt(127.5^2 + 63.75^2)
    x = torch.zeros(1, 3, 1, 2, dtype=torch.float64)
    x[0, 0, 0, 0] = 1.0
    root = math.hypot(127.5, 63.75)
    assert float(colorfulness(x)[0]) == pytest.approx(root + 0.3 * root, rel=1e-9)
    # (0, 255, 0) and (0, 0, 255): rg = (-255, 0), yb = (127.5, -255)
    y = torch.zeros(1, 3, 1, 2, dtype=torch.float64)
    y[0, 1, 0, 0] = 1.0
    y[0, 2, 0, 1] = 1.0
    sigma = math.sqrt(127.5**2 + 191.25**2)
    mu = math.hypot(-127.5, -63.75)
    assert float(colorfulness(y)[0]) == pytest.approx(sigma + 0.3 * mu, rel=1e-9)
    both = colorfulness(torch.cat([x, y]))
    assert float(both[0]) == pytest.approx(1.3 * root, rel=1e-9)


def test_entropy_of_known_histograms():
    x = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    x[0, 0, 0] = torch.tensor([0.0, 1.0])
    x[0, 0, 1] = torch.tensor([0.5, 0.25])  # four different levels, one pixel each: 2 bits
    assert float(gray_entropy(x)[0]) == pytest.approx(2.0, abs=1e-12)
    q = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    q[0, 0, 0, 0] = 1.0  # three pixels at 0, one at 255: H(0.75, 0.25) = 0.811278 bits
    assert float(gray_entropy(q)[0]) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)), abs=1e-9)
    # the 8-bit luma rounds: 0.299 * 1.0 -> 76.245 -> level 76; a pixel at 76/255 grey falls in the same bin
    r = torch.zeros(1, 3, 1, 2, dtype=torch.float64)
    r[0, 0, 0, 0] = 1.0
    r[0, :, 0, 1] = 76 / 255
    assert float(gray_entropy(r)[0]) == pytest.approx(0.0, abs=1e-12)
    r[0, :, 0, 1] = 77 / 255  # a different bin: 1 bit
    assert float(gray_entropy(r)[0]) == pytest.approx(1.0, abs=1e-12)


def test_mean_brightness_is_bt601_luma():
    x = torch.cat([img(0.2, 0.4, 0.8), img(1.0, 0.0, 0.0), img(0.0, 1.0, 0.0), img(0.0, 0.0, 1.0)])
    out = mean_brightness(x)
    expected = [0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.8, 0.299, 0.587, 0.114]
    assert torch.allclose(out, torch.tensor(expected, dtype=out.dtype), atol=1e-9)
    half = img(0.0, 0.0, 0.0)
    half[..., :1] = 1.0  # a quarter of the pixels white: 0.25
    assert float(mean_brightness(half)[0]) == pytest.approx(0.25, abs=1e-9)


# ------------------------------------------------------------------------------------------- content losses


def test_mse_and_l1_by_hand():
    src = torch.zeros(2, 3, 2, 2)
    out = src.clone()
    out[0, 1] = 0.1  # image 0: one channel off by 0.1
    out[1, :, 0, 0] = 0.3  # image 1: one pixel off by 0.3 on every channel
    mse, l1 = create("loss", "mse"), create("loss", "l1")
    assert torch.allclose(mse.per_image(src, out), torch.tensor([0.01 / 3, 0.09 / 4]), atol=1e-8)
    assert torch.allclose(l1.per_image(src, out), torch.tensor([0.1 / 3, 0.3 / 4]), atol=1e-8)
    assert float(mse(src, out)) == pytest.approx((0.01 / 3 + 0.09 / 4) / 2, abs=1e-8)
    assert float(l1(src, out)) == pytest.approx((0.1 / 3 + 0.3 / 4) / 2, abs=1e-8)
    neg = src - out  # the sign of the difference does not matter
    assert torch.allclose(l1.per_image(src, neg), l1.per_image(src, out))
    assert torch.allclose(mse.per_image(out, src), mse.per_image(src, out))


def test_self_feature_preserving_on_a_tiny_random_backbone():
    """Features of ``layer1`` of timm's tiny ``test_resnet``, computed here layer by layer; ImageNet
    normalisation and instance norm written out; the loss is the per-image MSE between the normalised maps."""
    torch.manual_seed(0)
    sfp = create(
        "loss",
        {"name": "self_feature_preserving", "pretrained": False, "backbone": "test_resnet", "layer": "layer1",
         "skip": []},
    )  # fmt: skip
    g = torch.Generator().manual_seed(3)
    src = torch.rand(2, 3, 32, 32, generator=g)
    out = (src + 0.2 * torch.rand(2, 3, 32, 32, generator=g)).clamp(0, 1)
    out[1] = src[1]  # the second image unchanged: loss 0
    net = sfp.backbone
    model = net.model if hasattr(net, "model") else net

    def feats(x):
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        h = (x - mean) / std
        for name in ("conv1", "bn1", "act1", "maxpool"):
            h = getattr(model, name)(h)
        for block in model.layer1:  # its blocks, not layer1 itself: the loss hooks layer1 to stop there
            h = block(h)
        mu = h.mean(dim=(2, 3), keepdim=True)
        var = h.var(dim=(2, 3), keepdim=True, unbiased=False)
        return (h - mu) / torch.sqrt(var + 1e-5)

    with torch.no_grad():
        expected = ((feats(out) - feats(src)) ** 2).flatten(1).mean(1)
        got = sfp.per_image(src, out)
    assert got.shape == (2,)
    assert float(got[1]) == pytest.approx(0.0, abs=1e-10)
    assert float(got[0]) > 0.01
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-7)
    assert float(sfp(src, out)) == pytest.approx(float(expected.mean()), rel=1e-4)


def test_statistics_edge_cases_by_hand():
    # colourfulness: yellow (255, 255, 0) and black: rg = (0, 0), yb = (255, 0): sigma = 127.5, mu = 127.5
    y = torch.zeros(1, 3, 1, 2)
    y[0, :2, 0, 0] = 1.0
    out = colorfulness(y)
    assert out.dtype == torch.float32 and float(out[0]) == pytest.approx(1.3 * 127.5, rel=1e-6)
    # entropy: levels 0 and 1 are different bins (1 bit); a batch gets one value per image
    e = torch.zeros(2, 1, 1, 2)
    e[0, 0, 0, 1] = 1 / 255
    ent = gray_entropy(e)
    assert ent.shape == (2,) and ent.dtype == torch.float32
    assert ent.tolist() == pytest.approx([1.0, 0.0], abs=1e-9)
    # mean brightness of a one-channel image is its mean
    assert float(mean_brightness(torch.full((1, 1, 3, 3), 0.4))[0]) == pytest.approx(0.4)


def test_full_reference_metrics_per_image_for_two_images():
    ref = torch.full((2, 3, 11, 11), 0.5, dtype=torch.float64)
    pred = ref + torch.tensor([0.1, 0.01], dtype=torch.float64).view(2, 1, 1, 1)
    assert psnr(pred, ref).tolist() == pytest.approx([20.0, 40.0], abs=1e-3)
    # 11 x 11 is the smallest size the 11 x 11 window accepts: one window, uniform images -> luminance term
    s = ssim(pred, ref)
    assert s.shape == (2,)
    assert float(s[0]) == pytest.approx((2 * 0.6 * 0.5 + C1) / (0.36 + 0.25 + C1), abs=1e-6)
    with pytest.raises(Exception, match="images are 10 x 11; the 11 x 11 window"):
        ssim(pred[..., :10, :], ref[..., :10, :])


def test_registered_metrics_give_the_known_values():
    ref = img(0.5, 0.5, 0.5, h=12, w=12, dtype=torch.float32)
    pred = ref + 0.1
    assert float(create("metric", "psnr")(pred, ref)[0]) == pytest.approx(20.0, abs=1e-4)
    expected_y = -20 * math.log10(0.1 * 219 / 255)
    psnr_y = create("metric", {"name": "psnr", "channel": "y"})
    assert float(psnr_y(pred, ref)[0]) == pytest.approx(expected_y, abs=1e-4)
    lum = (2 * 0.6 * 0.5 + C1) / (0.36 + 0.25 + C1)
    assert float(create("metric", "ssim")(pred, ref)[0]) == pytest.approx(lum, abs=1e-4)  # float32 moments
    ssim_y = create("metric", {"name": "ssim", "channel": "y", "window_size": 3})
    assert float(ssim_y(ref, ref)[0]) == pytest.approx(1.0)
    assert float(create("metric", "delta_e")(img(1.0, 1.0, 1.0), img(0.0, 0.0, 0.0))[0]) == pytest.approx(100, abs=0.01)
    assert float(create("metric", "mean_brightness")(img(1.0, 0.0, 0.0))[0]) == pytest.approx(0.299)
    assert float(create("metric", "colorfulness")(ref)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(create("metric", "entropy")(ref)[0]) == pytest.approx(0.0, abs=1e-9)


def test_metric_error_sentences_name_the_metric():
    from zoo.errors import InputError

    x = torch.rand(1, 3, 12, 12)
    for name, fn in (("psnr", psnr), ("ssim", ssim)):
        with pytest.raises(InputError, match=rf"metric '{name}': channel must be 'rgb' or 'y', got 'lab'"):
            fn(x, x, channel="lab")
        with pytest.raises(InputError, match=rf"metric '{name}': pred and ref must have the same shape"):
            fn(x, x[..., :11])
    with pytest.raises(InputError, match=r"metric 'delta_e': pred and ref must have the same shape"):
        delta_e76(x, x[..., :11])
    for fn, name in ((mean_brightness, "mean_brightness"), (colorfulness, "colorfulness"), (gray_entropy, "entropy")):
        with pytest.raises(InputError, match=rf"metric '{name}': pred must be in \[0, 1\]"):
            fn(x + 2)
    with pytest.raises(InputError, match=r"the 11 x 11 window needs at least that many pixels each way\.$"):
        ssim(x[..., :5, :], x[..., :5, :])
    from zoo.metrics.fullref import PSNR, SSIM

    for cls, name in ((PSNR, "psnr"), (SSIM, "ssim")):  # the classes check too (the registry checks first)
        with pytest.raises(InputError, match=rf"^metric '{name}': channel must be 'rgb' or 'y', got 'lab'\.$"):
            cls(channel="lab")
    for bad in (4, 1):
        with pytest.raises(InputError, match=f"window_size must be odd and >= 3, got {bad}"):
            create("metric", {"name": "ssim", "window_size": bad})
    small = torch.rand(1, 3, 5, 5)  # only a window of at most 5 fits: the module uses its own window_size
    assert float(create("metric", {"name": "ssim", "window_size": 5})(small, small)[0]) == pytest.approx(1.0)
