"""Full- and no-reference metrics: known values, the metric contract for every registered metric, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.errors import InputError
from zoo.registry import create, entries

from .conftest import SHARED

METRICS = [e.name for e in entries("metric", plugins=False)]
NIQE_PARAMS = SHARED / "data" / "niqe" / "niqe_pris_params.npz"


def _build(name: str):
    if name == "niqe":
        if not NIQE_PARAMS.is_file():
            pytest.skip(f"needs {NIQE_PARAMS}")
        return create("metric", {"name": name, "params": str(NIQE_PARAMS)})
    return create("metric", name)


def _pair(seed: int = 0, shape=(2, 3, 100, 110)):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(shape, generator=g)
    pred = (ref + 0.05 * torch.randn(shape, generator=g)).clamp(0, 1)
    return pred, ref


# ----------------------------------------------------------------------------------------------- contract


def test_expected_metrics_are_registered():
    assert {"niqe", "psnr", "ssim", "mean_brightness", "colorfulness", "entropy", "delta_e"} <= set(METRICS)


@pytest.mark.parametrize("name", METRICS)
def test_metric_contract(name):
    metric = _build(name)
    # a direction (bool), or None for a statistic with no better direction (mean brightness)
    assert metric.higher_is_better in (True, False, None) and isinstance(metric.needs_reference, bool)
    assert (metric.higher_is_better is None) == (name == "mean_brightness")
    pred, ref = _pair()
    out = metric(pred, ref if metric.needs_reference else None)
    assert out.shape == (2,) and torch.isfinite(out).all()
    one = metric(pred[1:], ref[1:] if metric.needs_reference else None)
    assert float(one[0]) == pytest.approx(float(out[1]), rel=1e-5, abs=1e-6)  # batch == one by one


@pytest.mark.parametrize("name", METRICS)
def test_metric_rejects_bad_input(name):
    metric = _build(name)
    ref = torch.rand(1, 3, 96, 96) if metric.needs_reference else None
    for bad, pattern in [
        ((torch.rand(1, 3, 96, 96) * 255).to(torch.uint8), "float"),
        (torch.rand(3, 96, 96), "batch"),
        (torch.rand(1, 4, 96, 96), "N x"),
        (torch.full((1, 3, 96, 96), float("nan")), "NaN"),
        (torch.rand(1, 3, 96, 96) + 1.5, r"\[0, 1\]"),
    ]:
        with pytest.raises(InputError, match=pattern) as info:
            metric(bad, ref)
        assert name in str(info.value)
    if metric.needs_reference:
        with pytest.raises(InputError, match="same shape"):
            metric(torch.rand(1, 3, 96, 96), torch.rand(1, 3, 96, 90))
        with pytest.raises(InputError, match="full-reference"):
            metric(torch.rand(1, 3, 96, 96))


# ----------------------------------------------------------------------------------------------- full reference


def test_psnr_known_values():
    ref = torch.full((2, 3, 16, 16), 0.5)
    pred = ref.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    out = create("metric", "psnr")(pred, ref)
    assert float(out[0]) == pytest.approx(20.0, abs=1e-4) and math.isinf(float(out[1]))
    # on Y, a grey offset of 0.1 moves Y by 0.1 * 219/255
    y = create("metric", {"name": "psnr", "channel": "y"})(pred[:1], ref[:1])
    assert float(y[0]) == pytest.approx(-20 * math.log10(0.1 * 219 / 255), abs=1e-3)


def test_ssim_properties():
    pred, ref = _pair(1)
    ssim = create("metric", "ssim")
    assert torch.allclose(ssim(ref, ref), torch.ones(2))
    s = ssim(pred, ref)
    assert (s < 0.99).all() and (s > 0).all()
    assert torch.allclose(s, ssim(ref, pred), atol=1e-6)  # symmetric
    worse = (ref + 0.2 * torch.randn_like(ref)).clamp(0, 1)
    assert (ssim(worse, ref) < s).all()
    assert create("metric", {"name": "ssim", "channel": "y"})(pred, ref).shape == (2,)
    with pytest.raises(InputError, match="window"):
        ssim(torch.rand(1, 3, 8, 40), torch.rand(1, 3, 8, 40))


def test_delta_e_known_value():
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    green = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    de = create("metric", "delta_e")
    # CIELAB (D65): red (53.24, 80.09, 67.20), green (87.73, -86.18, 83.18) -> Delta E76 = 170.6
    assert float(de(red, green)[0]) == pytest.approx(170.6, abs=0.5)
    assert float(de(red, red)[0]) == pytest.approx(0.0, abs=1e-3)


# ----------------------------------------------------------------------------------------------- no reference


def test_colorfulness_known_values():
    cf = create("metric", "colorfulness")
    assert float(cf(torch.full((1, 3, 8, 8), 0.3))[0]) == pytest.approx(0.0, abs=1e-6)
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0  # rg = 255, yb = 127.5, no spread: 0.3 * sqrt(255^2 + 127.5^2)
    assert float(cf(red)[0]) == pytest.approx(0.3 * math.hypot(255, 127.5), rel=1e-5)
    x = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(3))
    r, g, b = (x[0] * 255).double().numpy()
    rg, yb = r - g, 0.5 * (r + g) - b
    expected = math.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert float(cf(x)[0]) == pytest.approx(expected, rel=1e-5)


def test_brightness_and_entropy_known_values():
    mb, ent = create("metric", "mean_brightness"), create("metric", "entropy")
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    assert float(mb(red)[0]) == pytest.approx(0.299)
    assert float(mb(torch.full((1, 1, 4, 4), 0.25))[0]) == pytest.approx(0.25)
    assert float(ent(torch.full((1, 3, 8, 8), 0.5))[0]) == pytest.approx(0.0)
    halves = torch.zeros(1, 3, 8, 8)
    halves[..., 4:] = 1.0
    assert float(ent(halves)[0]) == pytest.approx(1.0)
    ramp = (torch.arange(256.0) / 255).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert float(ent(ramp)[0]) == pytest.approx(8.0)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(11, 24),
    w=st.integers(11, 24),
    level=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_full_reference_invariants(h, w, level, seed):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(1, 3, h, w, generator=g)
    flat = torch.full_like(ref, level)
    p = float(create("metric", "psnr")(flat, ref)[0])
    mse = float(((flat - ref) ** 2).mean())
    assert p == pytest.approx(10 * math.log10(1 / mse), rel=1e-4)
    s = float(create("metric", "ssim")(ref, ref)[0])
    assert s == pytest.approx(1.0, abs=1e-4)
    assert np.isfinite(float(create("metric", "colorfulness")(ref)[0]))
