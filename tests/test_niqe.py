"""NIQE: MATLAB-exact values on the reference images, its building blocks, the pristine model and niqe-fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import gamma as gamma_fn

from zoo.errors import DataError, InputError, ParameterError
from zoo.metrics import niqe as nq
from zoo.registry import create

from .conftest import shared_path


@pytest.fixture(scope="module")
def params_path():
    return shared_path("data", "niqe", "niqe_pris_params.npz")


@pytest.fixture(scope="module")
def model(params_path):
    return nq.PristineModel.load(params_path)


def _load_rgb(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


# ----------------------------------------------------------------------------------------------- reference values


def test_baboon_y_channel_matches_matlab(params_path):
    """MATLAB R2021a: 5.72957338 (BT.601 Y channel, no border crop)."""
    from zoo.inference import read_image

    x = read_image(shared_path("data", "niqe", "baboon.png"))[None]
    metric = create("metric", {"name": "niqe", "params": str(params_path), "color": "y"})
    value = float(metric(x)[0])
    assert value == pytest.approx(5.72957338, abs=1e-3)


@pytest.mark.slow
def test_dicm_grayscale_mean_matches_matlab(model):
    """Mean NIQE of the 64 DICM photos on rgb2gray: 4.2545 (EnlightenGAN's table: 4.255)."""
    folder = shared_path("data", "lowlight", "DICM")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png", ".bmp"))
    assert len(files) == 64
    values = [nq.niqe_gray(nq.rgb_to_gray_matlab(_load_rgb(f)), model) for f in files]
    assert np.mean(values) == pytest.approx(4.2545, abs=0.005)


def test_metric_on_tensors_equals_the_numpy_path(params_path, model):
    rgb = _load_rgb(shared_path("data", "lowlight", "DICM", "01.jpg"))[:300, :400]
    x = torch.from_numpy(rgb / 255.0).permute(2, 0, 1)[None].float()
    batch = torch.cat([x, x.flip(-1)])
    metric = create("metric", {"name": "niqe", "params": str(params_path)})
    scores = metric(batch)
    assert scores.shape == (2,) and scores.dtype == torch.float64
    assert float(scores[0]) == pytest.approx(nq.niqe_gray(nq.rgb_to_gray_matlab(rgb), model), abs=1e-12)
    assert float(metric(x.flip(-1))[0]) == pytest.approx(float(scores[1]), abs=1e-12)  # batch == one by one
    assert metric.higher_is_better is False and metric.needs_reference is False


# ----------------------------------------------------------------------------------------------- MATLAB pieces


def test_matlab_round_is_half_away_from_zero():
    assert nq.matlab_round(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999])).tolist() == [1, 2, 3, -1, -3, 2]


def test_matlab_color_conversions():
    px = np.array([[[255.0, 0, 0], [0, 255.0, 0], [0, 0, 255.0], [255.0, 255.0, 255.0]]])
    # rgb2gray uses the NTSC coefficients 0.2989, 0.5870, 0.1140 and rounds to uint8
    assert nq.rgb_to_gray_matlab(px)[0].tolist() == [76, 150, 29, 255]
    # rgb2ycbcr luma: 16 + 65.481, 16 + 128.553, 16 + 24.966, 235
    assert nq.rgb_to_y_matlab(px)[0].tolist() == [81, 145, 41, 235]


def test_imresize_half_keeps_constants_and_mirrors():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (48, 64))
    out = nq.imresize_matlab(img, 0.5)
    assert out.shape == (24, 32)
    assert np.allclose(nq.imresize_matlab(np.full((10, 14), 7.0), 0.5), 7.0)
    # a symmetric kernel with symmetric padding commutes with flipping
    assert np.allclose(nq.imresize_matlab(img[:, ::-1], 0.5), out[:, ::-1])
    assert np.allclose(nq.imresize_matlab(img[::-1], 0.5), out[::-1])
    # interior weights: the antialiased cubic at scale 0.5 is the 8-tap kernel 0.5 * cubic(x / 2)
    mat = nq._resize_matrix(64, 32, 0.5).toarray()
    taps = 0.5 * nq._cubic(np.arange(-3.5, 4.5) / 2.0)
    assert np.allclose(mat[10, 17:25], taps / taps.sum())
    assert np.allclose(mat.sum(axis=1), 1.0)


@pytest.mark.parametrize(("shape", "alpha"), [(2.0, 2.0), (1.0, 1.0)])
def test_aggd_recovers_generalised_gaussian_shape(shape, alpha):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.7, 200_000) if shape == 2.0 else rng.laplace(0, 0.5, 200_000)
    a, bl, br = nq.aggd_params(x[None])
    assert a[0] == pytest.approx(alpha, abs=0.05)
    std = x.std()
    expected_beta = std * np.sqrt(gamma_fn(1 / alpha) / gamma_fn(3 / alpha))
    assert bl[0] == pytest.approx(expected_beta, rel=0.03) and br[0] == pytest.approx(expected_beta, rel=0.03)


def test_aggd_follows_matlab_on_one_signed_blocks():
    # no negative value: leftstd = mean([]) = NaN, and MATLAB's min over an all-NaN vector returns index 1
    a, bl, br = nq.aggd_params(np.array([[0.1, 0.2, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert a.tolist() == pytest.approx([0.2, 0.2])
    assert np.isnan(bl).all() and np.isfinite(br[0]) and np.isnan(br[1])


def test_aggd_table_search_equals_full_argmin():
    rng = np.random.default_rng(2)
    x = rng.standard_t(3, (50, 500)) * rng.uniform(0.2, 3, (50, 1))
    a, _, _ = nq.aggd_params(x)
    left = np.sqrt(np.array([np.mean(r[r < 0] ** 2) for r in x]))
    right = np.sqrt(np.array([np.mean(r[r > 0] ** 2) for r in x]))
    g = left / right
    rhat = np.abs(x).mean(1) ** 2 / (x**2).mean(1)
    rn = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    full = nq._GAM[np.argmin((nq._R_GAM[None] - rn[:, None]) ** 2, axis=1)]
    assert np.array_equal(a, full)


# ----------------------------------------------------------------------------------------------- errors


def test_missing_model_fails_at_call_time_with_instructions(monkeypatch):
    monkeypatch.delenv(nq.ENV_VAR, raising=False)
    metric = create("metric", "niqe")  # builds from defaults: the packaged standard model
    assert np.isfinite(float(metric(torch.rand(1, 3, 96, 96))[0]))
    assert metric.model is not None and nq.resolve_params_path(None) == nq.DEFAULT_PARAMS
    with pytest.raises(DataError, match="ZOO_NIQE_PARAMS") as info:
        create("metric", {"name": "niqe", "params": "/nonexistent/p.npz"})(torch.rand(1, 3, 96, 96))
    assert "niqe-fit" in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        create("metric", {"name": "niqe", "params": "/nonexistent/p.npz"})(torch.rand(1, 3, 96, 96))


def test_env_var_supplies_the_model(monkeypatch, params_path):
    monkeypatch.setenv(nq.ENV_VAR, str(params_path))
    assert np.isfinite(float(create("metric", "niqe")(torch.rand(1, 3, 100, 100))[0]))


def test_bad_model_file_and_inputs(tmp_path, params_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu=np.zeros(3))
    with pytest.raises(DataError, match="lacks"):
        nq.PristineModel.load(bad)
    metric = create("metric", {"name": "niqe", "params": str(params_path)})
    with pytest.raises(InputError, match="96 x 96 block"):
        metric(torch.rand(1, 3, 64, 200))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        metric(torch.rand(1, 3, 96, 96) * 2)
    with pytest.raises(ParameterError, match="color"):
        create("metric", {"name": "niqe", "color": "lab"})


# ----------------------------------------------------------------------------------------------- fitting


def test_fit_pristine_and_niqe_fit_cli(tmp_path):
    from typer.testing import CliRunner

    from zoo.cli.main import app

    folder = shared_path("data", "normal", "CBSD68")
    src = tmp_path / "pristine"
    src.mkdir()
    for f in sorted(folder.iterdir())[:24]:  # enough blocks for a full-rank covariance (niqe-fit refuses fewer)
        (src / f.name).write_bytes(f.read_bytes())
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "model.npz"
    res = CliRunner().invoke(app, ["niqe-fit", str(src), "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "broken.png" in res.output
    fitted = nq.PristineModel.load(out)
    assert fitted.mu.shape == (36,) and fitted.cov.shape == (36, 36)
    assert np.allclose(fitted.cov, fitted.cov.T) and np.all(np.linalg.eigvalsh(fitted.cov) > -1e-9)
    assert np.allclose(fitted.window.sum(), 1.0)

    # the model is the mean of the kept (sharp) blocks of those photos
    grays = [nq.rgb_to_gray_matlab(_load_rgb(p)) for p in sorted(src.iterdir()) if p.name != "broken.png"]
    feats = []
    for g in grays:
        f, sharp = nq.niqe_features(g, fitted.window)
        feats.append(f[sharp > 0.75 * sharp.max()])
    assert np.allclose(fitted.mu, np.nanmean(np.concatenate(feats), axis=0))

    # a photo scores better (lower) against its own pristine model than a blurred, noisy copy does
    from scipy import ndimage

    g = grays[0]
    rng = np.random.default_rng(0)
    degraded = np.clip(np.round(ndimage.gaussian_filter(g, 2.5) + rng.normal(0, 12, g.shape)), 0, 255)
    assert nq.niqe_gray(g, fitted) < nq.niqe_gray(degraded, fitted)
