"""The local-contrast slider (``local_contrast``) and the software that puts it before the Lightroom sliders.

Registry-wide properties (identity at neutral, clamping, batch independence, finite gradients) come from
tests/test_editing_properties.py; this file checks the values a user relies on.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from zoo.editing.local import LocalContrast, clahe_lightness, clahe_value
from zoo.editing.software import LightroomBasic, LightroomLocal, software_slots
from zoo.errors import ParameterError
from zoo.generators.baselines import CLAHE
from zoo.registry import create


def _dark(seed: int, size: tuple[int, int] = (48, 64)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, max(1, size[0] // 8), max(1, size[1] // 8), generator=gen)
    smooth = torch.nn.functional.interpolate(base, size=size, mode="bilinear", align_corners=False)
    return (0.05 + 0.2 * smooth + 0.03 * torch.rand(1, 3, *size, generator=gen)).clamp(0, 1)


@pytest.mark.parametrize("channel", ["value", "lightness"])
def test_full_strength_is_clahe_as_opencv_computes_it(channel):
    x = _dark(0, size=(128, 160))
    out = LocalContrast(clip_limit=6.0, grid=8, channel=channel)(x, 1.0)
    rgb8 = np.round(x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    space, back, ch = (
        (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB, 2) if channel == "value" else (cv2.COLOR_RGB2Lab, cv2.COLOR_Lab2RGB, 0)
    )
    conv = cv2.cvtColor(rgb8, space)
    conv[..., ch] = cv2.createCLAHE(clipLimit=6.0, tileGridSize=(8, 8)).apply(np.ascontiguousarray(conv[..., ch]))
    ref = cv2.cvtColor(conv, back).astype(np.float32)
    diff = np.abs(out[0].permute(1, 2, 0).numpy() * 255 - ref)
    # OpenCV quantises each channel to 8 bits and clip limit 6 amplifies that; kornia's conversions stay float
    assert diff.mean() < 4.0 and np.percentile(diff, 99) <= 16.0, (diff.mean(), np.percentile(diff, 99))
    assert np.abs(ref - rgb8).mean() > 4 * diff.mean()  # CLAHE changed the photo far more than that


def test_strength_blends_linearly_between_the_photo_and_clahe():
    x = _dark(1)
    op = LocalContrast()
    full = clahe_value(x, 6.0, 8)
    assert torch.equal(op(x, 0.0), x)
    torch.testing.assert_close(op(x, 1.0), full, atol=1e-6, rtol=0)
    torch.testing.assert_close(op(x, 0.25), x + 0.25 * (full - x), atol=1e-6, rtol=0)
    torch.testing.assert_close(op(x, -0.5), (x - 0.5 * (full - x)).clamp(0, 1), atol=1e-6, rtol=0)  # less contrast
    # per image: each photo gets its own strength
    both = op(torch.cat([x, x]), torch.tensor([[0.0], [1.0]]))
    assert torch.equal(both[0], x[0]) and torch.allclose(both[1], full[0], atol=1e-6)


def test_brightens_dark_photos_and_raises_local_contrast():
    x = _dark(2)
    out = LocalContrast()(x, 1.0)
    assert out.mean() > x.mean() + 0.1

    def local_std(img: torch.Tensor) -> float:
        lum = img.mean(1, keepdim=True)
        mean = torch.nn.functional.avg_pool2d(lum, 8)
        sq = torch.nn.functional.avg_pool2d(lum**2, 8)
        return float((sq - mean**2).clamp_min(0).sqrt().mean())

    assert local_std(out) > 2 * local_std(x)


def test_gradient_with_respect_to_strength_is_the_clahe_change():
    x = _dark(3)
    s = torch.tensor([[0.4]], requires_grad=True)
    LocalContrast()(x, s).sum().backward()
    expected = (clahe_value(x, 6.0, 8) - x).sum()
    assert s.grad is not None and abs(float(s.grad) - float(expected)) < 1e-3 * max(1.0, abs(float(expected)))


def test_small_images_use_a_smaller_grid_and_tiny_ones_are_left_alone():
    op = LocalContrast(grid=8)
    small = _dark(4, size=(6, 10))  # fits a 3 x 3 grid
    torch.testing.assert_close(op(small, 1.0), clahe_value(small, 6.0, 3), atol=1e-6, rtol=0)
    tiny = torch.rand(1, 3, 1, 5)
    assert torch.equal(op(tiny, 1.0), tiny)


def test_the_clahe_baseline_is_the_same_function():
    x = _dark(5, size=(64, 64))
    assert torch.equal(CLAHE(clip_limit=3.0, grid=4)(x)["image"], clahe_lightness(x, 3.0, 4))
    assert torch.equal(CLAHE(clip_limit=3.0, grid=4, channel="value")(x)["image"], clahe_value(x, 3.0, 4))


def test_clahe_on_the_value_keeps_hue_and_saturation():
    from kornia.color import rgb_to_hsv

    x = _dark(10, size=(64, 64))
    before, after = rgb_to_hsv(x), rgb_to_hsv(clahe_value(x, 6.0, 8))
    keep = after[:, 2] < 0.99  # clipped whites lose them, as in any equalisation
    hue = torch.remainder(after[:, 0] - before[:, 0] + torch.pi, 2 * torch.pi) - torch.pi
    assert hue[keep].abs().max() < 1e-3 and (after[:, 1] - before[:, 1])[keep].abs().max() < 1e-3


def test_bad_settings_get_sentences():
    with pytest.raises(ParameterError, match="clip_limit must be >= 0"):
        LocalContrast(clip_limit=-1)
    with pytest.raises(ParameterError, match="grid must be >= 1"):
        LocalContrast(grid=0)
    with pytest.raises(ParameterError, match="channel must be one of value, lightness"):
        LocalContrast(channel="luma")


# ----------------------------------------------------------------------------------------------- lightroom_local


def test_lightroom_local_slots_are_local_contrast_then_the_global_lightroom_sliders():
    sw = create("software", "lightroom_local")
    global_names = [n for n in LightroomBasic().names if n not in ("dehaze", "clarity")]
    assert sw.names == ["local_contrast", *global_names] and sw.K == 11
    assert software_slots({"name": "lightroom_local"}) == sw.names  # read without building, for recipe checks


def test_lightroom_local_is_clahe_then_the_global_sliders_of_lightroom_basic():
    sw, lr = LightroomLocal(), LightroomBasic()
    x = _dark(6)
    gen = torch.Generator().manual_seed(6)
    sliders = torch.rand(2, 10, generator=gen) * 1.2 - 0.6
    strength = torch.tensor([[0.0], [0.7]])
    batch = torch.cat([x, x])
    params = torch.cat([strength, sliders], dim=1).requires_grad_(True)
    out = sw.apply(batch, params)
    full = torch.zeros(2, 12)  # dehaze and clarity at their neutral 0
    full[:, [lr.names.index(n) for n in sw.names[1:]]] = sliders
    expected = lr.apply_chain(LocalContrast()(batch, strength), full)  # CLAHE of the HSV value by default
    torch.testing.assert_close(out.detach(), expected, atol=2e-3, rtol=0)  # lightroom's dehaze/clarity residue
    assert (out[1] - out[0]).abs().mean() > 0.02  # and the local step did something
    out.sum().backward()
    assert params.grad is not None and float(params.grad[1, 0]) != 0.0


def test_lightroom_local_block_round_trips_its_settings():
    sw = create("software", {"name": "lightroom_local", "clip_limit": 4.0, "channel": "lightness"})
    assert sw.block() == {"name": "lightroom_local", "clip_limit": 4.0, "channel": "lightness"}
    assert create("software", "lightroom_local").block() == {"name": "lightroom_local"}
    assert sw.ops[0].clip_limit == 4.0 and sw.ops[0].channel == "lightness"


def test_edit_regressor_can_start_from_a_preset():
    from zoo.generators.edit_regressor import EditRegressor

    g = EditRegressor(software="lightroom_local", start={"local_contrast": 1.0, "exposure": 0.2}).eval()
    p = g.propose(_dark(7))[0]
    names = g.names
    assert abs(float(p.detach()[names.index("local_contrast")]) - 0.96) < 1e-4  # the range's end: 96 % of the way
    assert abs(float(p.detach()[names.index("exposure")]) - 0.2) < 1e-4
    assert float(p.detach()[names.index("contrast")]) == 0.0
    with pytest.raises(ParameterError, match="has no parameter 'exposur'.*Did you mean"):
        EditRegressor(software="lightroom_local", start={"exposur": 0.2})


# ----------------------------------------------------------------------------------------------- anchor_mse


def test_anchor_mse_measures_the_distance_to_clahe_of_the_source():
    from zoo.losses.content import AnchorMSE

    loss = AnchorMSE()
    x = _dark(8, size=(64, 64))
    target = clahe_value(x, 6.0, 8)  # the default anchor: the clahe generator at clip limit 6 on the HSV value
    assert float(loss(x, target)) == 0.0
    expected = ((x - target) ** 2).mean()
    torch.testing.assert_close(loss(x, x), expected, atol=1e-7, rtol=1e-5)
    # per image, and differentiable in the output only
    out = torch.cat([x, target]).requires_grad_(True)
    per = loss.per_image(torch.cat([x, x]), out)
    assert per.shape == (2,) and float(per[1].detach()) == 0.0 and float(per[0].detach()) > 0.01
    per.sum().backward()
    assert out.grad is not None and float(out.grad[0].abs().sum()) > 0


def test_anchor_mse_takes_training_free_anchors_only():
    from zoo.errors import InputError, UnknownComponentError
    from zoo.losses.content import AnchorMSE

    x = _dark(9, size=(64, 64))
    he = AnchorMSE(anchor="histogram_equalization")
    assert float(he(x, create("generator", "histogram_equalization")(x)["image"])) == 0.0
    with pytest.raises(InputError, match="must be a training-free generator"):
        AnchorMSE(anchor={"name": "edit_regressor"})
    with pytest.raises(UnknownComponentError, match="Did you mean 'clahe'"):
        AnchorMSE(anchor={"name": "clahee"})
