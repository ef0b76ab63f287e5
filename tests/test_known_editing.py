"""Known values for every editing operator, worked out independently of the code under test.

Two kinds of checks:

- each operator's formula on a few hand-picked values, with the expected numbers written as literals (worked out
  by hand from the formula in the reference README or the paper, shown in the comment beside them);
- the whole ``lightroom_basic`` pipeline (both its fused inference path and its operator chain) against a
  float64 NumPy re-implementation written here from ``../shared/reference/kosugi/README.md`` (its matrices are
  copied from the README as literals, not from the package), on random images and random slider values.

Dehaze and clarity are checked on tiny images where their windows are one pixel wide and the result follows
by hand (the parity tests check them at real sizes against the reference's own outputs).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.editing import exposure as hu
from zoo.editing import kosugi
from zoo.registry import create

pytestmark = pytest.mark.usefixtures("one_thread")


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def pixel(r: float, g: float, b: float) -> torch.Tensor:
    """One pixel as a ``1 x 3 x 1 x 1`` float64 image."""
    return t([r, g, b]).view(1, 3, 1, 1)


def hsv_pixels(*hsv: tuple[float, float, float]) -> torch.Tensor:
    """HSV pixels ``(h, s, v)`` as a ``1 x 3 x 1 x P`` float64 image."""
    return t(hsv).T.reshape(1, 3, 1, len(hsv))


def close(actual: torch.Tensor, expected, atol: float = 1e-6) -> None:
    expected = torch.as_tensor(expected, dtype=actual.dtype).reshape(actual.shape)
    assert torch.allclose(actual, expected, atol=atol, rtol=0), f"got {actual.flatten().tolist()}"


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# ------------------------------------------------------------------------------------------- ProPhoto-space ops


def test_contrast_around_the_global_mean():
    # two pixels, grey: values 0.2 and 0.6 on every channel, global mean 0.4
    x = t([0.2, 0.6]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    close(kosugi.contrast(x, t([0.5])), t([0.1, 0.7]).expand(3, 2))  # (x - 0.4) * 1.5 + 0.4
    close(kosugi.contrast(x, t([-1.0])), torch.full((3, 2), 0.4))  # everything to the mean
    close(kosugi.contrast(x, t([-0.5])), t([0.3, 0.5]).expand(3, 2))
    # the mean is over channels too: R = 0, G = 0.3, B = 0.9 -> m = 0.4; a = 1: (x - 0.4) 2 + 0.4, clipped
    y = kosugi.contrast(pixel(0.0, 0.3, 0.9), t([1.0]))
    close(y, [0.0, 0.2, 1.0])  # -0.4 -> 0 (clip), 0.2, 1.4 -> 1 (clip)


def test_dehaze_one_pixel_windows_by_hand():
    """At 1 x 2 pixels wsize = radius = 1: dark channel = channel min, guided filter = identity, A = max.

    pixel 1 = (0.2, 0.4, 0.6), pixel 2 = (0.8, 0.6, 0.4); A = (0.8, 0.6, 0.6) (k = 0 -> all pixels).
    omega = 0.5: t1 = 1 - 0.5 min(0.25, 0.667, 1) = 0.875; t2 = 1 - 0.5 min(1, 1, 0.667) = 2/3.
    J = (I - A) / t + A: pixel 1 = (0.8 - 0.6/0.875, 0.6 - 0.2/0.875, 0.6); pixel 2 = (0.8, 0.6, 0.6 - 0.2 * 1.5).
    """
    x = t([[0.2, 0.8], [0.4, 0.6], [0.6, 0.4]]).view(1, 3, 1, 2)
    expected = t([[0.8 - 0.6 / 0.875, 0.8], [0.6 - 0.2 / 0.875, 0.6], [0.6, 0.3]]).view(1, 3, 1, 2)
    for grad in (False, True):  # the no-grad fast path and the autograd path
        omega = t([0.5]).requires_grad_(grad)
        close(kosugi.dehaze(x, omega).detach(), expected, atol=1e-5)
    # omega < 0 adds haze: t = 1 + 0.5 dark >= 1; pixel 2's blue: t = 1 + 0.5 * 2/3 -> 0.6 - 0.2 / (4/3)
    hazy = kosugi.dehaze(x, t([-0.5]))
    assert hazy[0, 2, 0, 1].item() == pytest.approx(0.6 - 0.2 / (4.0 / 3.0), abs=1e-5)
    # the transmission floor t_min = 0.25: omega = 1 on a pixel whose dark channel is 1 -> t = 0 -> 0.25
    x2 = t([[0.1, 0.5], [0.1, 0.5], [0.1, 0.5]]).view(1, 3, 1, 2)  # A = 0.5; pixel 1 dark 0.2, pixel 2 dark 1
    out = kosugi.dehaze(x2, t([1.0]))
    close(out[0, :, 0, 0], torch.full((3,), 0.5 - 0.4 / 0.8), atol=1e-5)  # t = 0.8
    close(out[0, :, 0, 1], torch.full((3,), 0.5), atol=1e-5)  # I = A: unchanged whatever t
    x3 = t([[0.3, 0.6], [0.3, 0.6], [0.3, 0.6]]).view(1, 3, 1, 2)  # A = 0.6; pixel 1 dark 0.5 -> t = 0.5
    close(kosugi.dehaze(x3, t([1.0]))[0, :, 0, 0], torch.zeros(3), atol=1e-5)  # (0.3 - 0.6)/0.5 + 0.6 = 0
    x4 = t([[0.1, 0.4], [0.1, 0.4], [0.1, 0.4]]).view(1, 3, 1, 2)  # A = 0.4; dark 0.25 -> t = 0.75
    close(kosugi.dehaze(x4, t([1.0]))[0, :, 0, 0], torch.zeros(3), atol=1e-5)  # 0.4 - 0.3/0.75 = 0
    x5 = t([[0.2, 0.4], [0.2, 0.4], [0.2, 0.4]]).view(1, 3, 1, 2)  # dark 0.5, omega 1 -> t = 0.5 -> 0
    x5b = t([[0.32, 0.4], [0.32, 0.4], [0.32, 0.4]]).view(1, 3, 1, 2)  # dark 0.8 -> t = 0.2 -> floor 0.25
    close(kosugi.dehaze(x5, t([1.0]))[0, :, 0, 0], torch.zeros(3), atol=1e-5)
    close(kosugi.dehaze(x5b, t([1.0]))[0, :, 0, 0], torch.full((3,), 0.4 - 0.08 / 0.25), atol=1e-5)


def test_dehaze_atmosphere_uses_the_top_dark_pixels_when_the_image_is_large_enough():
    """1000 pixels: k = int(1000 * 0.001) = 1, so A is the brightest-dark-channel pixel, not the channel max."""
    x = torch.full((1, 3, 20, 50), 0.2, dtype=torch.float64)
    x[0, :, 0, 0] = t([0.9, 0.9, 0.9])  # the haziest pixel (dark channel 0.9): A = 0.9 everywhere
    x[0, 0, 5, 5] = 1.0  # a red pixel: its dark channel is 0.2, so it does not enter A
    # long side 50: wsize = int(15 * 50 / 512) = 1, radius = int(80 * 50 / 512) = 7 (a constant t region stays so)
    for grad in (False, True):
        out = kosugi.dehaze(x, t([0.5]).requires_grad_(grad)).detach()
        # background: dark(I/A) = 0.2/0.9, t = 1 - 0.5 * 0.2/0.9 = 8/9; J = (0.2 - 0.9) * 9/8 + 0.9 = 0.1125
        assert out[0, 1, 12, 30].item() == pytest.approx(0.1125, abs=1e-4)
        # the red pixel is brighter than A in red: J = 0.9 + 0.1 * 9/8 = 1.0125, clipped to 1
        assert out[0, 0, 5, 5].item() == 1.0


def test_dehaze_clips_at_one_on_the_fast_path():
    """At 420 px the guided filter runs subsampled and the output pass is chunked; it still clips to [0, 1]."""
    x = torch.full((1, 3, 420, 300), 0.2)
    x[0, :, :40, :40] = 0.9  # a hazy corner: A = 0.9
    x[0, 0, 200:210, 150:160] = 1.0  # red above A: J > 1 before the clip
    with torch.no_grad():
        out = kosugi.dehaze(x, torch.tensor([0.5]))
    slow = kosugi.dehaze(x, torch.tensor([0.5]).requires_grad_(True)).detach()
    assert out.max() <= 1.0 and out[0, 0, 205, 155].item() == 1.0
    assert torch.allclose(out, slow, atol=1e-5)
    assert out[0, 1, 300, 100].item() == pytest.approx(0.1125, abs=1e-3)  # as at 20 x 50: t = 8/9


def test_clarity_on_a_flat_image_is_the_8bit_truncation_residue():
    """A constant image is its own bilateral filter, up to the 8-bit truncation: 0.5 -> floor(127.5) = 127.

    out = x + (x - 127/255) a: a = 1 gives 0.5 + (0.5 - 0.4980392) = 0.5019608; a = -1 gives 0.4980392.
    """
    x = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64)
    close(kosugi.clarity(x, t([1.0])), torch.full_like(x, 1.0 - 127.0 / 255.0), atol=1e-7)
    close(kosugi.clarity(x, t([-1.0])), torch.full_like(x, 127.0 / 255.0), atol=1e-7)
    close(kosugi.clarity(x, t([0.5])), torch.full_like(x, 0.5 + 0.5 * (0.5 - 127.0 / 255.0)), atol=1e-7)


def test_clarity_sharpens_an_edge_against_a_smooth_bilateral():
    """Two flat halves 0.2 / 0.6 (51 / 153 in 8 bits, L1 colour distance 306 -> colour weight exp(-306^2/5000),
    about 7e-9): the bilateral keeps the edge, so clarity changes nothing but the truncation residue there."""
    x = torch.full((1, 3, 16, 16), 0.2, dtype=torch.float64)
    x[..., 8:] = 0.6
    out = kosugi.clarity(x, t([1.0]))
    close(out[..., :8], torch.full((1, 3, 16, 8), 0.2), atol=1e-6)  # 0.2 * 255 = 51 exactly
    close(out[..., 8:], torch.full((1, 3, 16, 8), 0.6), atol=1e-6)  # 0.6 * 255 = 153 exactly


# ------------------------------------------------------------------------------------------- logit-space ops


def test_exposure_temp_tint_offsets_in_logit_space():
    x = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    close(kosugi.exposure(x, t([0.5])), [2.5, 2.5, 2.5])  # + 5 a
    close(kosugi.exposure(x, t([-1.0])), [-5.0, -5.0, -5.0])
    close(kosugi.temp(x, t([0.5])), [1.0, 0.8, 0.0])  # a > 0: R + 2a, G + 1.6a
    close(kosugi.temp(x, t([-0.5])), [0.0, 0.5, 1.0])  # a < 0: B - 2a, G - a
    close(kosugi.tint(x, t([0.5])), [0.5, 0.0, 1.0])  # a > 0: B + 2a, R + a
    close(kosugi.tint(x, t([-0.5])), [0.5, 1.0, 0.0])  # a < 0: G - 2a, R - a
    close(kosugi.temp(x, t([0.0])), [0.0, 0.0, 0.0])
    close(kosugi.tint(x, t([0.0])), [0.0, 0.0, 0.0])


# ------------------------------------------------------------------------------------------- HSV-space ops


def test_whites_blacks_on_value():
    hsv = hsv_pixels((30.0, 0.5, 0.5), (200.0, 0.2, 0.25))
    # sqrt(0.44 + 1) - 1 = 0.2, times 0.2 = 0.04
    w = kosugi.whites(hsv, t([0.44]))
    close(w[:, 2], [0.5 * 1.04, 0.25 * 1.04])  # v + v 0.04
    b = kosugi.blacks(hsv, t([0.44]))
    close(b[:, 2], [0.5 + 0.5 * 0.04, 0.25 + 0.75 * 0.04])  # v + (1 - v) 0.04
    # a = -1: sqrt(0) - 1 = -1, times 0.2: whites v 0.8, blacks v - 0.2 (1 - v)
    close(kosugi.whites(hsv, t([-1.0]))[:, 2], [0.4, 0.2], atol=1e-5)
    close(kosugi.blacks(hsv, t([-1.0]))[:, 2], [0.4, 0.25 - 0.15], atol=1e-5)
    # a = 0.21: sqrt(1.21) = 1.1 -> 0.02
    close(kosugi.whites(hsv, t([0.21]))[:, 2], [0.51, 0.255])
    for out in (w, b):  # hue and saturation untouched
        close(out[:, :2], hsv[:, :2])


def test_highlights_shadows_through_their_masks():
    hsv = hsv_pixels((10.0, 0.3, 0.8), (10.0, 0.3, 1.0), (10.0, 0.3, 0.2), (10.0, 0.3, 0.0))
    m_hi = sigmoid(-1.0)  # sigmoid(5 (0.8 - 1)) = 0.2689414
    hi = kosugi.highlights(hsv, t([0.2]))[:, 2].flatten()
    assert hi[0].item() == pytest.approx(1 - 0.2 * (1 - 5 * m_hi * 0.2), abs=1e-9)  # 0.8537883
    assert hi[0].item() == pytest.approx(0.8537883, abs=1e-6)
    assert hi[1].item() == pytest.approx(1.0, abs=1e-12)  # v = 1 stays 1
    m_hi2 = sigmoid(-4.0)  # v = 0.2
    assert hi[2].item() == pytest.approx(1 - 0.8 * (1 - 5 * m_hi2 * 0.2), abs=1e-9)
    m_sh = 1 - sigmoid(1.0)  # 1 - sigmoid(5 * 0.2) = 0.2689414
    sh = kosugi.shadows(hsv, t([0.2]))[:, 2].flatten()
    assert sh[2].item() == pytest.approx(0.2 * (1 + 5 * m_sh * 0.2), abs=1e-9)  # 0.2537883
    assert sh[2].item() == pytest.approx(0.2537883, abs=1e-6)
    assert sh[3].item() == 0.0  # black stays black
    m_sh0 = 1 - sigmoid(4.0)  # v = 0.8
    assert sh[0].item() == pytest.approx(0.8 * (1 + 5 * m_sh0 * 0.2), abs=1e-9)
    neg = kosugi.shadows(hsv, t([-0.6]))[:, 2].flatten()
    assert neg[2].item() == pytest.approx(0.2 * (1 - 3 * m_sh), abs=1e-9)


def test_vibrance_saturation_on_saturation():
    hsv = hsv_pixels((100.0, 0.5, 0.7), (100.0, 0.2, 0.7), (100.0, 0.8, 0.7))
    vib = kosugi.vibrance(hsv, t([0.5]))[:, 1].flatten()
    assert vib[0].item() == pytest.approx(0.625, abs=1e-9)  # f = 0.5: 0.5 * 1.5 * 0.5 + 0.5 * 0.5
    f = 1 - sigmoid(-3.0)  # s = 0.2: f = 1 - sigmoid(10 (0.2 - 0.5)) = 0.9525741
    assert vib[1].item() == pytest.approx(0.2 * 1.5 * f + 0.2 * (1 - f), abs=1e-9)  # 0.2952574
    assert vib[1].item() == pytest.approx(0.2952574, abs=1e-6)
    f8 = 1 - sigmoid(3.0)  # s = 0.8: muted change (f = 0.0474259)
    assert vib[2].item() == pytest.approx(0.8 * 1.5 * f8 + 0.8 * (1 - f8), abs=1e-9)
    sat = kosugi.saturation(hsv, t([0.5]))[:, 1].flatten()
    close(sat, [0.75, 0.3, 1.0])  # s 1.5, clipped at 1
    close(kosugi.saturation(hsv, t([-1.0]))[:, 1].flatten(), [0.0, 0.0, 0.0])
    close(kosugi.saturation(hsv, t([-0.5]))[:, 1].flatten(), [0.25, 0.1, 0.4])
    for out in (kosugi.vibrance(hsv, t([0.5])), kosugi.saturation(hsv, t([0.5]))):
        close(out[:, 0], hsv[:, 0])
        close(out[:, 2], hsv[:, 2])


# ------------------------------------------------------------------------------------------- Hu et al.'s filters


def test_exposure_gain_doubles_per_stop_and_clips():
    x = t([0.1, 0.2, 0.3, 0.6]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    close(hu.exposure_gain(x, t([1.0]))[0, 0, 0], [0.2, 0.4, 0.6, 1.0])  # x 2, 1.2 clipped
    close(hu.exposure_gain(x, t([-2.0]))[0, 0, 0], [0.025, 0.05, 0.075, 0.15])  # x 1/4
    close(hu.exposure_gain(x, t([0.5]))[0, 0, 0], [0.1 * 2**0.5, 0.2 * 2**0.5, 0.3 * 2**0.5, 0.6 * 2**0.5])


def test_gamma_formula_and_endpoints():
    e = 1e-3
    x = t([0.0, 0.25, 0.5, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    for g in (2.0, 0.5, 3.0):
        k = 1 / g
        lo = e**k
        expected = [((v + e) ** k - lo) / ((1 + e) ** k - lo) for v in (0.0, 0.25, 0.5, 1.0)]
        close(hu.gamma(x, t([g]))[0, 0, 0], expected, atol=1e-9)
    # it is x^(1/g) up to the offset e (about sqrt(e) = 0.03 at g = 2): 0.25^(1/2) = 0.5, 0.5^(1/2) = 0.7071
    close(hu.gamma(x, t([2.0]))[0, 0, 0], [0.0, 0.5, 0.7071068, 1.0], atol=0.02)
    close(hu.gamma(x, t([0.5]))[0, 0, 0], [0.0, 0.0625, 0.25, 1.0], atol=0.02)


def test_white_balance_keeps_luminance_with_027_067_006_weights():
    # gains (2, 1, 0.5): 0.27 * 2 + 0.67 * 1 + 0.06 * 0.5 = 1.24 -> per-channel factors 2/1.24, 1/1.24, 0.5/1.24
    x = pixel(0.3, 0.3, 0.3)
    close(hu.white_balance(x, t([[2.0, 1.0, 0.5]])), [0.48387097, 0.24193548, 0.12096774], atol=1e-7)
    # gains (1, 2, 1): 0.27 + 1.34 + 0.06 = 1.67
    close(hu.white_balance(pixel(0.5, 0.5, 0.5), t([[1.0, 2.0, 1.0]])), [0.5 / 1.67, 1.0 / 1.67, 0.5 / 1.67])
    # gains (1, 1, 2): 0.27 + 0.67 + 0.12 = 1.06; clipping: (0.6 / 1.06, 0.6 / 1.06, 1.2 / 1.06 -> 1)
    close(hu.white_balance(pixel(0.6, 0.6, 0.6), t([[1.0, 1.0, 2.0]])), [0.6 / 1.06, 0.6 / 1.06, 1.0])
    # the module, through its registered name and range (sRGB space: no conversion)
    wb = create("editor", "white_balance")
    y = wb(pixel(0.3, 0.3, 0.3).float(), torch.tensor([[2.0, 1.0, 0.5]]))
    close(y, [0.48387097, 0.24193548, 0.12096774], atol=1e-6)


def test_tone_curve_piecewise_linear_by_hand():
    # slopes (2, 1, ..., 1): sum 9, normalised kn = slopes * 8 / 9 = (16/9, 8/9, ...); segment width 1/8
    slopes = t([[2.0] + [1.0] * 7])
    x = t([0.0, 0.0625, 0.125, 0.5, 0.9375, 1.0]).view(1, 1, 1, 6).expand(1, 3, 1, 6)
    # f(1/16) = 16/9 / 16 = 1/9; f(1/8) = 2/9; f(1/2) = 2/9 + 3 * 1/9 = 5/9; f(15/16) = 1 - 1/18; f(1) = 1
    expected = [0.0, 1 / 9, 2 / 9, 5 / 9, 1 - 1 / 18, 1.0]
    out = hu.tone_curve(x, slopes)
    for c in range(3):
        close(out[0, c, 0], expected, atol=1e-7)
    # slopes (1, ..., 1, 2) (the last segment steep): f(1/2) = 4/9, f(15/16) = 7/9 + 1/9 = 8/9
    out2 = hu.tone_curve(x, t([[1.0] * 7 + [2.0]]))
    close(out2[0, 0, 0], [0.0, 1 / 18, 1 / 9, 4 / 9, 8 / 9, 1.0], atol=1e-7)
    close(hu.tone_curve(x, t([[1.5] * 8])), x, atol=1e-7)  # equal slopes: identity


def test_color_curves_one_curve_per_channel():
    x = t([0.0625, 0.5]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    slopes = t([[2.0] + [1.0] * 7 + [1.0] * 8 + [1.0] * 7 + [2.0]])  # R: steep start; G: identity; B: steep end
    out = hu.color_curves(x, slopes)
    close(out[0, 0, 0], [1 / 9, 5 / 9], atol=1e-7)
    close(out[0, 1, 0], [0.0625, 0.5], atol=1e-7)
    close(out[0, 2, 0], [1 / 18, 4 / 9], atol=1e-7)


def test_bw_mix_blends_with_bt601_grey():
    x = pixel(1.0, 0.0, 0.0)  # grey = 0.299
    close(hu.bw_mix(x, t([1.0])), [0.299, 0.299, 0.299], atol=1e-6)
    close(hu.bw_mix(x, t([0.5])), [0.6495, 0.1495, 0.1495], atol=1e-6)
    y = pixel(0.2, 0.4, 0.8)  # grey = 0.0598 + 0.2348 + 0.0912 = 0.3858
    close(hu.bw_mix(y, t([0.25])), [0.75 * 0.2 + 0.25 * 0.3858, 0.75 * 0.4 + 0.25 * 0.3858, 0.75 * 0.8 + 0.25 * 0.3858])


def test_exposure_filters_software_in_its_slot_order():
    """The flattened 38-slot software applies ev, gamma, WB gains, tone and colour curves, B&W in that order."""
    s = create("software", "exposure_filters")
    p = s.neutral(1)
    named = dict(zip(s.names, range(s.K), strict=True))
    p[0, named["exposure_gain"]] = 1.0
    p[0, named["white_balance.r"]] = 2.0
    p[0, named["white_balance.b"]] = 0.5
    x = pixel(0.15, 0.15, 0.15).float()
    # 0.15 * 2 = 0.3, then WB (2, 1, 0.5) / 1.24
    close(s.apply(x, p), [0.48387097, 0.24193548, 0.12096774], atol=1e-6)


# ------------------------------------------------------------------------------------------- whole pipeline
# A float64 NumPy re-implementation of the reference editor's point-wise stages, from the README's formulas.

M_SRGB_TO_PP = np.array(
    [[0.5163058538, 0.3020464781, 0.1816476681], [0.0952906178, 0.8749922847, 0.0297170975],
     [0.0177565828, 0.1094679610, 0.8727754562]]
)  # fmt: skip
M_PP_TO_SRGB = np.array(
    [[2.0735664739, -0.6646324641, -0.4089340098], [-0.2253479286, 1.2199863284, 0.0053616002],
     [-0.0139223397, -0.1394950026, 1.1534173423]]
)  # fmt: skip


def _pos(a):
    return (a > 0).astype(np.float64)


def ref_edit(img: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The reference's 12-slider edit of one RGB image ``3 x H x W`` in [0, 1], for dehaze = clarity = 0."""
    assert p[0] == 0 and p[1] == 0
    lin = np.where(img <= 0.04045, img / 12.92, ((img + 0.055) / 1.055) ** 2.4)
    pp = np.clip(np.einsum("ij,jhw->ihw", M_SRGB_TO_PP, lin), 0, 1)
    x = np.where(pp >= 1 / 512, pp ** (1 / 1.8), 16 * pp)
    m = x.mean()
    x = np.clip((x - m) * (1 + p[2]) + m, 0, 1)
    x = np.clip(x, 1e-3, 1 - 1e-3)
    z = -np.log(1 / x - 1)
    r, g, b = z
    r = r + 5 * p[3]
    g = g + 5 * p[3]
    b = b + 5 * p[3]
    if p[4] > 0:
        g, r = g + 1.6 * p[4], r + 2 * p[4]
    else:
        b, g = b - 2 * p[4], g - p[4]
    if p[5] > 0:
        b, r = b + 2 * p[5], r + p[5]
    else:
        g, r = g - 2 * p[5], r - p[5]
    r, g, b = (1 / (1 + np.exp(-c)) for c in (r, g, b))
    eps = 1e-5
    v = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    s = (v - mn) / (v + eps)
    d = v - mn + eps
    b_min = (1 - _pos(b - g)) * _pos(r - b)
    r_min = (1 - _pos(r - b)) * _pos(g - r)
    g_min = (1 - _pos(g - r)) * _pos(b - g)
    h = (60 * (g - r) / d + 60) * b_min + (60 * (b - g) / d + 180) * r_min + (60 * (r - b) / d + 300) * g_min
    v = v + v * (np.sqrt(p[6] + 1) - 1) * 0.2
    v = v + (1 - v) * (np.sqrt(p[7] + 1) - 1) * 0.2
    mk = 1 / (1 + np.exp(-5 * (v - 1)))
    v = 1 - (1 - v) * (1 - 5 * mk * p[8])
    mk = 1 - 1 / (1 + np.exp(-5 * v))
    v = v * (1 + 5 * mk * p[9])
    f = 1 - 1 / (1 + np.exp(-10 * (s - 0.5)))
    s = s * (1 + p[10]) * f + s * (1 - f)
    s = np.clip(s * (1 + p[11]), 0, 1)
    # Hsv2Bgr: wrap h into (0, 360], then the sextant formula
    h = np.where(h <= 0, h + 360, np.where(h > 360, h - 360, h))
    c = v * s
    h6 = h / 60
    sext = np.clip(np.ceil(h6) - 1, 0, 5)  # (0, 60] -> 0, (60, 120] -> 1, ...
    xx = c * (1 - np.abs(h6 % 2 - 1))
    rgb = np.zeros((3,) + h.shape)
    table = [(c, xx, 0 * c), (xx, c, 0 * c), (0 * c, c, xx), (0 * c, xx, c), (xx, 0 * c, c), (c, 0 * c, xx)]
    for k, (cr, cg, cb) in enumerate(table):
        sel = sext == k
        rgb[0] = np.where(sel, cr, rgb[0])
        rgb[1] = np.where(sel, cg, rgb[1])
        rgb[2] = np.where(sel, cb, rgb[2])
    rgb = rgb + (v - c)
    lin = np.where(rgb < 1 / 32, rgb / 16, np.abs(rgb) ** 1.8)
    out = np.clip(np.einsum("ij,jhw->ihw", M_PP_TO_SRGB, lin), 0, 1)
    return np.where(out > 0.04045 / 12.92, 1.055 * out ** (1 / 2.4) - 0.055, 12.92 * out)


def _rows(seed: int) -> np.ndarray:
    """Single-slider rows (each point-wise slider at -1, -0.5, 0.5, 1) and random rows, dehaze = clarity = 0."""
    rows = [np.zeros(12)]
    for i in range(2, 12):
        for v in (-1.0, -0.5, 0.5, 1.0):
            r = np.zeros(12)
            r[i] = v
            rows.append(r)
    rng = np.random.default_rng(seed)
    rand = (rng.integers(0, 33, size=(6, 12)) - 16) / 16.0
    rand[:, :2] = 0
    return np.concatenate([np.stack(rows), rand])


@pytest.mark.parametrize("path", ["fused", "chain"])
def test_lightroom_pipeline_matches_a_numpy_reimplementation(path):
    s = create("software", "lightroom_basic")
    rng = np.random.default_rng(7)
    img = rng.random((3, 6, 5))
    img[:, 0, 0] = 0.5  # a grey pixel (hue 0 -> 360 wrap)
    img[:, 0, 1] = [0.9, 0.1, 0.1]  # saturated primaries
    img[:, 0, 2] = [0.1, 0.8, 0.2]
    img[:, 0, 3] = [0.05, 0.1, 0.9]
    img[:, 1, 0] = [0.02, 0.01, 0.015]  # near black (linear segments)
    rows = _rows(3)
    x = torch.from_numpy(img).float().unsqueeze(0).expand(len(rows), -1, -1, -1).contiguous()
    p = torch.from_numpy(rows).float()
    with torch.no_grad():
        out = (s.apply_fused(x, p) if path == "fused" else s.apply_chain(x, p)).double().numpy()
    for i, row in enumerate(rows):
        ref = ref_edit(img.astype(np.float32).astype(np.float64), row)
        err = np.abs(out[i] - ref).max()
        assert err < 2e-5, f"row {i} ({row.tolist()}): max abs {err:.2e}"


def test_lightroom_single_sliders_move_a_grey_pixel_as_written_out():
    """sRGB grey 0.5 -> linear 0.2140411 -> ProPhoto (rows sum to 1: grey stays grey) -> gamma 1/1.8; exposure
    +5a in logit space, then back; the same number worked out with ``math`` here."""
    s = create("software", "lightroom_basic")
    lin = ((0.5 + 0.055) / 1.055) ** 2.4
    pp = lin ** (1 / 1.8)
    for a in (-0.5, 0.25, 1.0):
        y = sigmoid(math.log(pp / (1 - pp)) + 5 * a)
        lin_out = min(max(y**1.8, 0.0), 1.0)
        expected = 1.055 * lin_out ** (1 / 2.4) - 0.055 if lin_out > 0.04045 / 12.92 else 12.92 * lin_out
        p = torch.zeros(1, 12)
        p[0, 3] = a
        out = s.apply(torch.full((1, 3, 2, 2), 0.5), p)
        close(out, torch.full((1, 3, 2, 2), expected), atol=2e-6)


def test_hu_filters_apply_each_images_own_parameters():
    """A batch of two images with different parameters: each image gets its own (hand values as above)."""
    x = torch.full((2, 3, 1, 2), 0.3, dtype=torch.float64)
    close(hu.exposure_gain(x, t([1.0, -1.0])), t([0.6, 0.15]).view(2, 1, 1, 1).expand(2, 3, 1, 2))
    g = hu.gamma(x, t([1.0, 2.0]))
    close(g[0], x[0], atol=1e-9)  # g = 1: identity
    k, e = 0.5, 1e-3
    close(g[1], torch.full((3, 1, 2), ((0.3 + e) ** k - e**k) / ((1 + e) ** k - e**k)), atol=1e-7)
    wb = hu.white_balance(x, t([[2.0, 1.0, 0.5], [1.0, 2.0, 1.0]]))
    close(wb[0, :, 0, 0], [0.6 / 1.24, 0.3 / 1.24, 0.15 / 1.24])
    close(wb[1, :, 0, 0], [0.3 / 1.67, 0.6 / 1.67, 0.3 / 1.67])
    xs = t([0.0625, 0.5]).view(1, 1, 1, 2).expand(2, 3, 1, 2)
    tc = hu.tone_curve(xs, t([[2.0] + [1.0] * 7, [1.0] * 7 + [2.0]]))
    close(tc[0, 1, 0], [1 / 9, 5 / 9], atol=1e-7)
    close(tc[1, 1, 0], [1 / 18, 4 / 9], atol=1e-7)
    cc = hu.color_curves(xs, t([[2.0] + [1.0] * 23, [1.0] * 23 + [2.0]]))
    close(cc[0, 0, 0], [1 / 9, 5 / 9], atol=1e-7)  # image 0: red steep start, others identity
    close(cc[0, 2, 0], [0.0625, 0.5], atol=1e-7)
    close(cc[1, 2, 0], [1 / 18, 4 / 9], atol=1e-7)  # image 1: blue steep end
    close(cc[1, 0, 0], [0.0625, 0.5], atol=1e-7)
    bw = hu.bw_mix(torch.cat([pixel(1.0, 0.0, 0.0)] * 2), t([1.0, 0.0]))
    close(bw[0, :, 0, 0], [0.299, 0.299, 0.299], atol=1e-6)
    close(bw[1, :, 0, 0], [1.0, 0.0, 0.0], atol=1e-6)


def test_kosugi_sliders_apply_each_images_own_parameters():
    hsv = hsv_pixels((30.0, 0.5, 0.5)).expand(2, 3, 1, 1)
    close(kosugi.whites(hsv, t([0.44, -1.0]))[:, 2].flatten(), [0.52, 0.4], atol=1e-6)
    close(kosugi.blacks(hsv, t([0.44, -1.0]))[:, 2].flatten(), [0.52, 0.4], atol=1e-6)
    close(kosugi.saturation(hsv, t([0.5, -0.5]))[:, 1].flatten(), [0.75, 0.25])
    close(kosugi.vibrance(hsv, t([0.5, -1.0]))[:, 1].flatten(), [0.625, 0.25])  # f = 0.5: s (1 + a) 0.5 + s 0.5
    m = sigmoid(-2.5)  # highlights at v = 0.5
    close(kosugi.highlights(hsv, t([0.2, -0.2]))[:, 2].flatten(), [1 - 0.5 * (1 - m), 1 - 0.5 * (1 + m)])
    m = 1 - sigmoid(2.5)
    close(kosugi.shadows(hsv, t([0.2, -0.2]))[:, 2].flatten(), [0.5 * (1 + m), 0.5 * (1 - m)])
    z = torch.zeros(2, 3, 1, 1, dtype=torch.float64)
    close(kosugi.exposure(z, t([0.5, -0.5])), t([[2.5] * 3, [-2.5] * 3]))
    close(kosugi.temp(z, t([0.5, -0.5])), t([[1.0, 0.8, 0.0], [0.0, 0.5, 1.0]]))
    close(kosugi.tint(z, t([0.5, -0.5])), t([[0.5, 0.0, 1.0], [0.5, 1.0, 0.0]]))
    x = torch.cat(
        [t([0.2, 0.6]).view(1, 1, 1, 2).expand(1, 3, 1, 2), t([0.0, 0.4]).view(1, 1, 1, 2).expand(1, 3, 1, 2)]
    )
    # each image around its own mean (0.4 and 0.2): image 1 with a = -0.5: (x - 0.2) 0.5 + 0.2
    expected = t([[0.1, 0.7], [0.1, 0.3]]).view(2, 1, 1, 2).expand(2, 3, 1, 2)
    close(kosugi.contrast(x, t([0.5, -0.5])), expected)


def test_clarity_methods():
    """The registered clarity module passes its bilateral method on: 'exact' and 'grid' differ at radius 9."""
    from zoo.errors import ParameterError

    x = torch.rand(1, 3, 240, 300, generator=torch.Generator().manual_seed(5))
    outs = {m: create("editor", {"name": "clarity", "method": m})(x, torch.tensor([1.0])) for m in ("exact", "grid")}
    auto = create("editor", "clarity")(x, torch.tensor([1.0]))
    assert torch.equal(auto, outs["grid"])  # radius 9 > 8: auto takes the grid
    assert (outs["exact"] - outs["grid"]).abs().max() > 1e-3
    with pytest.raises(ParameterError, match="method must be 'auto', 'exact' or 'grid', got 'fast'"):
        create("editor", {"name": "clarity", "method": "fast"})


def test_clarity_autograd_path_gives_the_same_known_values():
    x = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64, requires_grad=True)
    out = kosugi.clarity(x, t([1.0]))
    close(out.detach(), torch.full((1, 3, 16, 16), 1.0 - 127.0 / 255.0), atol=1e-7)
    out.sum().backward()  # straight-through truncation: d out / d x = 1 + a (1 - d bilateral / d x)
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ["dehaze", "clarity"])
def test_filters_leave_images_with_a_zero_amount_untouched(name):
    """A batch mixing a zero and a non-zero amount: the zero one comes back bit-identical (the filter is skipped
    for it), the other equals its own single-image result."""
    fn = getattr(kosugi, name)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 40, 56, generator=g, dtype=torch.float64)
    amounts = t([0.0, 0.7, -0.4])
    out = fn(x, amounts)
    assert torch.equal(out[0], x[0])
    for i in (1, 2):
        single = fn(x[i : i + 1], amounts[i : i + 1])
        assert torch.allclose(out[i : i + 1], single, atol=1e-6)
        assert (single - x[i : i + 1]).abs().max() > 1e-3


# bilateral radius 4 (exact taps), 9 and 15 (grid); at 500 px int(32 s) = 31: radius 15 (int(33 s) = 32 would be 16)
@pytest.mark.parametrize("hw", [(96, 128), (240, 300), (375, 500)])
def test_clarity_inference_path_equals_autograd_path(hw):
    """The in-place no-grad path and the autograd path of clarity are the same maths (filter sizes, sigmas, the
    8-bit truncation, the unsharp formula), at sizes where the bilateral window is several pixels wide."""
    g = torch.Generator().manual_seed(hw[0])
    x = torch.rand(2, 3, *hw, generator=g)
    amount = torch.tensor([0.8, -0.6])
    with torch.no_grad():
        fast = kosugi.clarity(x, amount)
    slow = kosugi.clarity(x, amount.clone().requires_grad_(True)).detach()
    assert torch.allclose(fast, slow, atol=1e-5), float((fast - slow).abs().max())
    assert (fast - x).abs().mean() > 1e-3
