"""Classical baselines (gamma, CLAHE, histogram equalisation): OpenCV parity, invariants, use without a checkpoint."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from zoo.cli.main import app
from zoo.contracts import contract_of
from zoo.errors import DataError, InputError
from zoo.generators.baselines import CLAHE, GammaToMean, HistogramEqualization, equalize_hist, luma
from zoo.inference import load_model, read_image
from zoo.registry import entries

pytestmark = pytest.mark.usefixtures("one_thread")


def _dark_scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """An under-exposed 8-bit RGB scene: smooth gradients, a few objects and noise (mean about 0.15)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.05 + 0.25 * (0.6 * xx + 0.4 * yy)
    img = np.stack([base * 0.9, base, base * 1.2], axis=-1)
    for _ in range(4):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(8, 24)
        mask = (np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2 < r * r
        img[mask] = rng.uniform(0.05, 0.4, 3)
    img += rng.normal(0, 0.01, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _tensor(rgb8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb8)).permute(2, 0, 1)[None].float() / 255.0


def _opencv_he(rgb8: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(rgb8, cv2.COLOR_RGB2HSV)
    hsv[..., 2] = cv2.equalizeHist(hsv[..., 2])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _opencv_clahe(rgb8: np.ndarray, clip: float = 2.0, grid: int = 8) -> np.ndarray:
    lab = cv2.cvtColor(rgb8, cv2.COLOR_RGB2Lab)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(grid, grid)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def _ours(gen: torch.nn.Module, rgb8: np.ndarray) -> np.ndarray:
    return gen(_tensor(rgb8))["image"][0].permute(1, 2, 0).numpy() * 255.0


# ----------------------------------------------------------------------------------------------- OpenCV parity


def test_equalize_hist_is_opencv_equalizehist_exactly():
    rng = np.random.default_rng(1)
    for shape in [(40, 50), (7, 300)]:
        for v in (rng.integers(0, 256, shape), (rng.beta(0.6, 4.0, shape) * 255).round()):
            v = v.astype(np.uint8)
            ours = equalize_hist(torch.from_numpy(v).float()[None, None] / 255.0)[0, 0].numpy() * 255.0
            np.testing.assert_array_equal(np.round(ours).astype(np.uint8), cv2.equalizeHist(v))
    flat = np.full((5, 5), 37, np.uint8)  # one level: OpenCV leaves it unchanged
    ours = equalize_hist(torch.from_numpy(flat).float()[None, None] / 255.0)[0, 0].numpy() * 255.0
    np.testing.assert_array_equal(np.round(ours).astype(np.uint8), cv2.equalizeHist(flat))


def test_histogram_equalization_matches_opencv_on_v():
    for seed in range(3):
        rgb8 = _dark_scene(seed=seed)
        diff = np.abs(_ours(HistogramEqualization(), rgb8) - _opencv_he(rgb8).astype(np.float32))
        # OpenCV rounds H, S and V to 8 bits on the way; the float round trip does not
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 4.0, (diff.mean(), np.percentile(diff, 99))


def test_clahe_matches_opencv_on_lab_l():
    for seed in range(3):
        rgb8 = _dark_scene(seed=seed)
        ours = _ours(CLAHE(clip_limit=2.0, grid=8), rgb8)
        diff = np.abs(ours - _opencv_clahe(rgb8).astype(np.float32))
        # OpenCV quantises L, a and b to 8 bits; kornia's Lab stays float
        assert diff.mean() < 3.0 and np.percentile(diff, 99) <= 10.0, (diff.mean(), np.percentile(diff, 99))
        # and it is not trivially close: the input differs from either by far more
        assert np.abs(rgb8.astype(np.float32) - ours).mean() > 10.0


def test_baselines_match_opencv_on_real_photos():
    dicm = sorted(p for p in Path(_shared("data", "lowlight", "DICM")).iterdir() if p.suffix == ".jpg")[:3]
    for path in dicm:
        x = read_image(path)[:, :256, :256]
        rgb8 = (x.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        he = np.abs(_ours(HistogramEqualization(), rgb8) - _opencv_he(rgb8).astype(np.float32))
        cl = np.abs(_ours(CLAHE(), rgb8) - _opencv_clahe(rgb8).astype(np.float32))
        assert he.mean() < 1.0 and cl.mean() < 3.5, (path.name, he.mean(), cl.mean())


def _shared(*parts: str) -> Path:
    from tests.conftest import shared_path

    return shared_path(*parts)


# ----------------------------------------------------------------------------------------------- invariants


def test_gamma_reaches_the_target_mean_either_way():
    dark = _tensor(_dark_scene())
    bright = 1.0 - 0.5 * dark
    x = torch.cat([dark, bright])
    out = GammaToMean(target=0.45)(x)
    means = luma(out["image"]).mean(dim=(1, 2, 3))
    torch.testing.assert_close(means, torch.full((2,), 0.45), atol=0.01, rtol=0)
    assert out["gamma"][0] < 1.0 < out["gamma"][1]  # brightens the dark one, darkens the bright one
    g = out["gamma"][0]  # one power law per image, the same on R, G and B
    torch.testing.assert_close(out["image"][0], x[0].pow(g))


def test_gamma_is_bounded_on_black_and_flat_images():
    black = torch.zeros(1, 3, 16, 16)
    out = GammaToMean(target=0.45, max_gamma=4.0)(black)
    assert torch.equal(out["image"], black) and out["gamma"].item() == pytest.approx(0.25, rel=1e-3)
    white = torch.ones(1, 3, 16, 16)
    assert torch.equal(GammaToMean()(white)["image"], white)


@pytest.mark.parametrize("gen", [GammaToMean(), CLAHE(), HistogramEqualization()], ids=lambda g: type(g).__name__)
def test_baselines_keep_shape_range_and_batch_independence(gen):
    a, b = _tensor(_dark_scene(seed=1)), _tensor(_dark_scene(seed=2))
    both = gen(torch.cat([a, b]))["image"]
    assert both.shape == (2, 3, 96, 128) and both.min() >= 0 and both.max() <= 1
    torch.testing.assert_close(both[1:], gen(b)["image"], atol=1e-5, rtol=0)  # per image, not per batch
    assert luma(both).mean() > luma(torch.cat([a, b])).mean() + 0.05  # they brighten dark scenes
    assert list(gen.parameters()) == []


def test_histogram_equalization_keeps_hue():
    rgb8 = _dark_scene()
    x = _tensor(rgb8)
    y = HistogramEqualization()(x)["image"]
    ratio = y / x.clamp(min=1e-3)
    bright = x.amax(dim=1, keepdim=True) > 0.05
    spread = (ratio.amax(dim=1, keepdim=True) - ratio.amin(dim=1, keepdim=True))[bright]
    assert spread.median() < 0.05  # each pixel's R, G, B scaled by one factor


def test_bad_inputs_get_sentences():
    with pytest.raises(InputError, match=r"generator 'clahe' takes N x 3 x H x W"):
        CLAHE()(torch.rand(3, 8, 8))
    with pytest.raises(InputError, match="float images"):
        HistogramEqualization()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(InputError, match="at least 16 px"):
        CLAHE(grid=8)(torch.rand(1, 3, 10, 40))
    with pytest.raises(InputError, match=r"target must be in \(0, 1\)"):
        GammaToMean(target=1.5)
    with pytest.raises(InputError, match="clip_limit must be >= 0"):
        CLAHE(clip_limit=-1)


# ----------------------------------------------------------------------------------------------- registry


def test_registered_training_free_and_tagged_baseline():
    names = {e.name for e in entries("generator") if "baseline" in e.tags}
    assert {"gamma", "clahe", "histogram_equalization"} <= names
    for name in ("gamma", "clahe", "histogram_equalization"):
        assert contract_of("generator", {"name": name}).learning == "none"


def test_load_model_builds_training_free_generators_and_refuses_learners():
    m = load_model(generator="clahe", device="cpu")
    assert isinstance(m.generator, CLAHE) and m.source == "generator clahe" and not m.generator.training
    m = load_model(generator={"name": "gamma", "target": 0.3}, device="cpu")
    assert m.generator.target == 0.3 and m.source == "generator gamma"
    m = load_model(generator="{name: clahe, clip_limit: 3.0}", device="cpu")
    assert m.generator.clip_limit == 3.0
    with pytest.raises(DataError, match=r"'enlightengan_unet': this generator learns \(backprop\) and would run") as e:
        load_model(generator="enlightengan_unet", device="cpu")
    assert "Training-free generators: clahe, gamma, histogram_equalization." in str(e.value)
    with pytest.raises(Exception, match="Did you mean 'clahe'"):
        load_model(generator="clahee", device="cpu")


# ----------------------------------------------------------------------------------------------- CLI


def _folder(root: Path, n: int = 2) -> Path:
    root.mkdir(parents=True)
    for k in range(n):
        Image.fromarray(_dark_scene(64, 80, seed=k)).save(root / f"p{k}.png")
    return root


def test_cli_enhance_with_a_baseline_needs_no_checkpoint(tmp_path):
    src = _folder(tmp_path / "in")
    res = CliRunner().invoke(app, ["enhance", str(src), "-o", str(tmp_path / "out"), "--generator", "clahe", "-q"])
    assert res.exit_code == 0, res.output
    out = np.asarray(Image.open(tmp_path / "out" / "p0.png"), dtype=np.float32)
    expected = _ours(CLAHE(), np.asarray(Image.open(src / "p0.png")))
    assert np.abs(out - expected).max() <= 1.0
    assert "generator clahe" in res.output


def test_cli_eval_compares_several_models_in_one_table(tmp_path):
    src = _folder(tmp_path / "in", n=3)
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            "baseline:histogram_equalization",
            "--model",
            "generator:{name: gamma, target: 0.3}",
            "--data",
            str(src),
            "--metrics",
            "mean_brightness",
            "--baseline",
            "--json",
            str(tmp_path / "scores.json"),
            "--no-track",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "in [baseline:histogram_equalization]" in res.output and "in (input)" in res.output  # not eaten as markup
    import json

    sets = {s["set"]: s for s in json.loads((tmp_path / "scores.json").read_text())["sets"]}
    assert set(sets) == {
        "in [baseline:histogram_equalization]",
        "in [generator:{name: gamma, target: 0.3}]",
        "in (input)",
    }
    mean = {k: v["metrics"]["mean_brightness"]["mean"] for k, v in sets.items()}
    assert mean["in [generator:{name: gamma, target: 0.3}]"] == pytest.approx(0.3, abs=0.02)
    assert mean["in (input)"] < 0.25 < mean["in [baseline:histogram_equalization]"]
    assert all(len(s["images"]) == 3 for s in sets.values())


def test_cli_eval_refuses_a_bad_model_spec(tmp_path):
    src = _folder(tmp_path / "in", n=1)
    res = CliRunner().invoke(app, ["eval", "--model", "baselin:clahe", "--data", str(src), "-q"])
    assert isinstance(res.exception, DataError)
    msg = str(res.exception)
    assert "names no model" in msg and "Did you mean 'baseline'" in msg and "pretrained:NAME" in msg
