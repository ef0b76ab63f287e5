"""``edit_regressor``: continuous sliders regressed from a thumbnail, applied differentiably at full resolution."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.contracts import SliderGenerator, contract_of
from zoo.errors import DataError, ParameterError
from zoo.generators.edit_regressor import EditRegressor
from zoo.registry import create

CHAIN = {"name": "editor_chain", "operators": ["exposure", "contrast", "saturation", "gamma"]}
SOFTWARES = ["lightroom_basic", "exposure_filters", CHAIN]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _randomise_head(g: EditRegressor, scale: float = 0.5, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    last = g.head[-1]
    with torch.no_grad():
        last.weight.copy_(torch.randn(last.weight.shape, generator=gen) * scale)
        last.bias.copy_(torch.randn(last.bias.shape, generator=gen) * scale)


@pytest.mark.parametrize("software", SOFTWARES, ids=["lightroom_basic", "exposure_filters", "editor_chain"])
def test_untrained_regressor_is_the_identity_edit(software):
    g = create("generator", {"name": "edit_regressor", "software": software}).eval()
    assert isinstance(g, SliderGenerator)
    x = torch.rand(2, 3, 40, 56) * 0.8 + 0.1
    with torch.no_grad():
        out = g(x)
    assert set(out) == {"image", "params"}
    assert torch.equal(out["params"], g.software.neutral(2))
    assert torch.allclose(out["image"], g.software.apply(x, g.software.neutral(2)))
    assert float((out["image"] - x).abs().max()) < 2e-3  # neutral sliders: the photo comes back (up to rounding)


@pytest.mark.parametrize("software", SOFTWARES, ids=["lightroom_basic", "exposure_filters", "editor_chain"])
def test_params_stay_within_each_slider_range_and_reach_both_ends(software):
    g = EditRegressor(software=software).eval()
    low, high = g.software.low, g.software.high
    x = torch.rand(3, 3, 32, 48)
    _randomise_head(g, scale=3.0)
    with torch.no_grad():
        p = g.propose(x)
    assert p.shape == (3, g.software.K)
    assert bool((p >= low - 1e-6).all()) and bool((p <= high + 1e-6).all())
    assert not torch.allclose(p, g.software.neutral(3))
    # saturated head: u = +-1 lands on each range's ends (log-scaled sliders included)
    for sign, end in ((1.0, high), (-1.0, low)):
        with torch.no_grad():
            g.head[-1].weight.zero_()
            g.head[-1].bias.fill_(sign * 50.0)
            p = g.propose(x)
        assert torch.allclose(p, end.expand_as(p), rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_network_through_the_software_at_full_resolution():
    torch.manual_seed(0)
    g = EditRegressor(software="lightroom_basic").train()
    x = torch.rand(2, 3, 96, 128) * 0.6
    out = g(x)
    assert out["image"].shape == (2, 3, 96, 128)  # edited at the input's own size, not the 64 px thumbnail
    out["image"].mean().backward()
    last = g.head[-1]
    assert float(last.weight.grad.abs().sum()) > 0 and float(last.bias.grad.abs().sum()) > 0
    # the zero-initialised last layer blocks the gradient to the trunk at the very first step; one update later
    # it flows all the way down
    g.zero_grad()
    _randomise_head(g, scale=0.05)
    g(x)["image"].mean().backward()
    first_conv = g.backbone[0]
    assert float(first_conv.weight.grad.abs().sum()) > 0
    # the gradient is the software's: raising the exposure slider brightens, so d mean / d bias[exposure] > 0
    g.zero_grad()
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    g(x)["image"].mean().backward()
    assert float(last.bias.grad[g.names.index("exposure")]) > 0


def test_timm_backbone_random_init():
    torch.manual_seed(0)
    g = EditRegressor(software=CHAIN, backbone="resnet18", thumbnail_size=32, hidden=16)
    assert not g.backbone.pretrained_cfg.get("file") and g.head[0].in_features == 512
    x = torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        assert torch.equal(g.eval().propose(x), g.software.neutral(2))
    g.train()
    _randomise_head(g, scale=0.1)
    out = g(x)
    out["image"].mean().backward()
    assert out["image"].shape == x.shape
    assert float(g.backbone.conv1.weight.grad.abs().sum()) > 0


def test_contract_matches_the_built_generator():
    for software in SOFTWARES:
        block = {"name": "edit_regressor", "software": software, "thumbnail_size": 48}
        c = contract_of("generator", block)
        g = create("generator", block)
        assert c.learning == "backprop" and c.has_sliders and c.levels is None
        assert (c.software, c.num_params, c.thumbnail_size) == (g.software.software_name, g.software.K, 48)


def test_bad_parameters_get_sentences(tmp_path):
    with pytest.raises(ParameterError, match="neither 'kosugi' nor a timm model.*resnet18"):
        EditRegressor(backbone="resnet_18")
    with pytest.raises(ParameterError, match="no pretrained weights"):
        EditRegressor(backbone="kosugi", pretrained=True)
    with pytest.raises(DataError, match="does not exist"):
        EditRegressor(weights=str(tmp_path / "missing.pt"))
    other = EditRegressor(software=CHAIN)
    torch.save(other.state_dict(), tmp_path / "chain.pt")
    with pytest.raises(DataError, match="does not fit this network"):
        EditRegressor(software="lightroom_basic", weights=str(tmp_path / "chain.pt"))


def test_weights_round_trip(tmp_path):
    g = EditRegressor(software=CHAIN)
    _randomise_head(g)
    torch.save(g.state_dict(), tmp_path / "w.pt")
    h = EditRegressor(software=CHAIN, weights=str(tmp_path / "w.pt"))
    x = torch.rand(1, 3, 30, 30)
    with torch.no_grad():
        assert torch.equal(g.eval().propose(x), h.eval().propose(x))


# ----------------------------------------------------------------------------------------------- enhance, export

RECIPE = """\
name: edit_regressor_tiny   # a test recipe
seed: 0
data: {{name: synthetic, size: 4, height: 40, width: 48, crop_size: 32}}
model:
  generator:
    name: edit_regressor
    software: lightroom_basic
    hidden: 16
    weights: {weights}
  discriminators:
    global:
      network: {{name: patchgan_nonorm, ndf: 8, n_layers: 3}}
      objective: {{name: lsgan}}
      weight: 1.0
  losses:
    mse: {{loss: {{name: mse}}, weight: 0.1}}
train: {{trainer: gan, steps: 2, batch_size: 2, device: cpu, samples: 0, out_dir: {out}}}
tracking: {{enabled: false}}
"""


def test_zoo_enhance_writes_json_and_xmp_sidecars(tmp_path):
    from typer.testing import CliRunner

    from zoo.cli.main import app

    g = EditRegressor(software="lightroom_basic", hidden=16)
    _randomise_head(g, scale=0.5, seed=3)
    torch.save(g.state_dict(), tmp_path / "w.pt")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(weights=tmp_path / "w.pt", out=tmp_path / "runs"), encoding="utf-8")
    photo = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(photo).save(tmp_path / "in" / "p.png")

    res = CliRunner().invoke(
        app, ["enhance", str(tmp_path / "in"), "--recipe", str(recipe), "--out", str(tmp_path / "o"), "--xmp", "-q"]
    )
    assert res.exit_code == 0, res.output
    side = json.loads((tmp_path / "o" / "p.json").read_text())
    assert side["software"] == "lightroom_basic" and list(side["params"]) == g.names
    with torch.no_grad():
        expect = g.eval().propose(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255)[0]
    got = torch.tensor([side["params"][n] for n in g.names])
    assert torch.allclose(got, expect, atol=1e-5) and not torch.allclose(got, g.software.neutral(1)[0])
    desc = (
        ET.parse(tmp_path / "o" / "p.xmp").getroot().find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    )
    crs = {k.split("}")[1]: v for k, v in desc.attrib.items() if "camera-raw-settings" in k}
    contrast = round(float(expect[g.names.index("contrast")]) * 100)
    assert crs["Contrast2012"] == (f"{contrast:+d}" if contrast else "0")
    assert set(crs) >= {"Exposure2012", "Contrast2012", "Clarity2012", "Dehaze", "IncrementalTemperature"}


def test_export_keeps_the_regressor_with_the_software_in_metadata(tmp_path):
    onnx = pytest.importorskip("onnx")
    from zoo.export import export_onnx

    g = EditRegressor(software=CHAIN, hidden=16)
    _randomise_head(g)
    report = export_onnx(g, tmp_path / "r.onnx")
    assert report.kind == "regressor" and report.checked_size == (64, 64) and report.max_abs_diff < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "r.onnx")).metadata_props}
    assert meta["zoo.kind"] == "regressor" and meta["zoo.software"] == "editor_chain"
    assert json.loads(meta["zoo.sliders"]) == g.names
    ranges = json.loads(meta["zoo.ranges"])
    assert ranges["gamma"] == [g.software.specs[3].low, g.software.specs[3].high]


def test_trains_a_few_steps_under_the_gan_trainer(tmp_path):
    from zoo.recipe import load_recipe
    from zoo.train.gan import GANTrainer

    g = EditRegressor(software="lightroom_basic", hidden=16)
    torch.save(g.state_dict(), tmp_path / "w.pt")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(weights=tmp_path / "w.pt", out=tmp_path / "runs"), encoding="utf-8")
    result = GANTrainer(load_recipe(recipe), quiet=True).fit()
    assert result.steps == 2 and result.checkpoint is not None
    state = torch.load(result.checkpoint, weights_only=True)
    after = state["modules"]["generator"]
    before = g.state_dict()
    assert not torch.equal(after["head.2.bias"], before["head.2.bias"])  # the sliders moved off neutral
    assert not torch.equal(after["head.0.weight"], before["head.0.weight"])  # and the gradient reached the head
