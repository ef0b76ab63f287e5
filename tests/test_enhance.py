"""Full-resolution inference: image I/O, tiling, batches with bad files, sidecars (JSON, XMP), `zoo enhance`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from zoo import inference as inf
from zoo.cli.main import app
from zoo.contracts import SliderGenerator
from zoo.errors import DataError
from zoo.registry import create

from .conftest import shared_path

CRS = "{http://ns.adobe.com/camera-raw-settings/1.0/}"


class Pointwise(nn.Module):
    """A per-pixel generator: tiling must reproduce the whole-image result exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        return {"image": (x * self.gain).clamp(0, 1).sqrt()}


class SliderEditor(SliderGenerator):
    """Edits with the real lightroom_basic software and reports its slider values (as the RL generator does)."""

    def __init__(self, values: dict[str, float]) -> None:
        super().__init__()
        self.software = create("software", "lightroom_basic")
        self.register_buffer("params", self.software.from_dict(values)[None])

    def propose(self, x):
        return self.params.expand(x.shape[0], -1)


def _write(path: Path, arr: np.ndarray, mode: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path, **kw) if mode else Image.fromarray(arr).save(path, **kw)
    return path


def _photos(root: Path) -> Path:
    rng = np.random.default_rng(0)
    _write(root / "a.png", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    _write(root / "sub" / "b.jpg", rng.integers(0, 255, (50, 30, 3), dtype=np.uint8))
    (root / "broken.png").write_bytes(b"\x89PNG but not really")
    (root / "notes.txt").write_text("ignored")
    return root


# ----------------------------------------------------------------------------------------------- I/O


def test_read_image_conversions(tmp_path):
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:, :2, 3] = 255  # opaque red on the left, transparent on the right
    x = inf.read_image(_write(tmp_path / "rgba.png", rgba))
    assert x.shape == (3, 4, 5) and x.dtype == torch.float32
    assert torch.allclose(x[:, 0, 0], torch.tensor([200 / 255, 0, 0]))
    assert torch.allclose(x[:, 0, 4], torch.ones(3))  # composited on white

    gray = inf.read_image(_write(tmp_path / "g.png", np.full((3, 3), 51, dtype=np.uint8)))
    assert gray.shape == (3, 3, 3) and torch.allclose(gray, torch.full_like(gray, 0.2))

    deep = np.full((2, 2), 65535 // 4, dtype=np.uint16)
    x16 = inf.read_image(_write(tmp_path / "g16.png", deep))
    assert torch.allclose(x16, torch.full((3, 2, 2), (65535 // 4) / 65535), atol=1e-6)

    # EXIF orientation 6 (rotate 90 degrees clockwise) is applied: a 4 x 6 file shows as 6 x 4
    exif = Image.Exif()
    exif[0x0112] = 6
    oriented = _write(tmp_path / "o.jpg", np.zeros((4, 6, 3), dtype=np.uint8), exif=exif.tobytes())
    assert inf.read_image(oriented).shape == (3, 6, 4)

    with pytest.raises(DataError, match="broken.png cannot be decoded"):
        inf.read_image(_photos(tmp_path / "p") / "broken.png")


def test_write_read_roundtrip_is_8bit_exact(tmp_path):
    x = torch.randint(0, 256, (3, 7, 9)).float() / 255
    assert torch.equal(inf.read_image(inf.write_image(tmp_path / "r.png", x)), x)


def test_collect_images_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        inf.collect_images([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No images"):
        inf.collect_images([tmp_path / "empty"])


# ----------------------------------------------------------------------------------------------- running


def test_tiling_matches_whole_image_for_a_pointwise_generator():
    x = torch.rand(1, 3, 150, 230)
    g = Pointwise().eval()
    whole = inf.run_generator(g, x)["image"]
    tiled = inf.run_generator(g, x, tile=64, overlap=16)["image"]
    assert torch.allclose(whole, tiled, atol=1e-6)


def test_tiling_a_real_generator_keeps_size_and_range():
    g = create("generator", {"name": "enlightengan_unet", "base_channels": 4}).eval()
    x = torch.rand(1, 3, 100, 140)
    out = inf.run_generator(g, x, tile=64, overlap=16)["image"]
    assert out.shape == x.shape and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    whole = inf.run_generator(g, x)["image"]
    # away from tile seams the receptive field differs only near borders: most pixels agree closely
    assert (whole - out).abs().median() < 0.05


def test_enhance_files_keeps_layout_and_lists_bad_files(tmp_path):
    root = _photos(tmp_path / "in")
    single = _write(tmp_path / "single.bmp", np.full((20, 20, 3), 10, dtype=np.uint8))
    report = inf.enhance_files(Pointwise(), [root, single], tmp_path / "out", progress=False)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.outputs) == [
        "a.png",
        "single.png",
        "sub/b.png",
    ]
    assert [p.name for p, _ in report.skipped] == ["broken.png"]
    a = inf.read_image(tmp_path / "out" / "a.png")
    src = inf.read_image(root / "a.png")
    assert torch.allclose(a, src.sqrt(), atol=1 / 255 + 1e-6)
    assert report.sidecars == []  # not a slider generator


def test_slider_generator_writes_json_and_xmp_sidecars(tmp_path):
    values = {"exposure": 0.25, "contrast": 0.5, "temp": -0.25, "tint": 0.125, "dehaze": -1.0, "vibrance": 0.0}
    gen = SliderEditor(values)
    src = _write(tmp_path / "in" / "p.png", np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    report = inf.enhance_files(gen, [src.parent], tmp_path / "out", xmp=True, progress=False, source="test")
    assert [p.name for p in report.sidecars] == ["p.json", "p.xmp"]

    side = json.loads((tmp_path / "out" / "p.json").read_text())
    assert side["software"] == "lightroom_basic"
    assert side["params"]["exposure"] == pytest.approx(0.25) and side["params"]["clarity"] == 0.0
    # the sidecar replays through the software (what `zoo edit` does)
    replay = gen.software.load_sidecar(tmp_path / "out" / "p.json")
    assert torch.allclose(replay, gen.params[0].float())

    desc = (
        ET.parse(tmp_path / "out" / "p.xmp")
        .getroot()
        .find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    )
    attrs = {k.replace(CRS, ""): v for k, v in desc.attrib.items() if k.startswith(CRS)}
    assert attrs["Exposure2012"] == "+1.50"
    assert attrs["Contrast2012"] == "+50"
    assert attrs["IncrementalTemperature"] == "-25"
    assert attrs["IncrementalTint"] == "+12" or attrs["IncrementalTint"] == "+13"
    assert attrs["Dehaze"] == "-100" and attrs["Vibrance"] == "0"
    assert attrs["Clarity2012"] == "0" and attrs["HasSettings"] == "True"


def test_lightroom_mapping():
    assert inf.exposure_to_ev(0.0) == pytest.approx(0.0, abs=1e-12)
    evs = [inf.exposure_to_ev(p) for p in np.linspace(-1, 1, 21)]
    assert all(b >= a for a, b in zip(evs, evs[1:], strict=False)) and min(evs) >= -5 and max(evs) <= 5
    s = inf.lightroom_settings({"shadows": 0.333, "blacks": -1.0, "unknown": 0.5, "whites": 2.0})
    assert s == {"Shadows2012": "+33", "Blacks2012": "-100", "Whites2012": "+100"}


def test_load_model_needs_exactly_one_source():
    with pytest.raises(DataError, match="exactly one"):
        inf.load_model()
    with pytest.raises(DataError, match="exactly one"):
        inf.load_model(checkpoint="a.pt", run_id="abc")
    with pytest.raises(DataError, match="--set"):
        inf.load_model(checkpoint="a.pt", overrides=["x=1"])


# ----------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def fake_model(monkeypatch):
    """`zoo enhance` resolves its model through zoo.inference.load_model; serve a known generator."""
    served = {}

    def load_model(**kwargs):
        served.update(kwargs)
        return inf.LoadedModel(served.pop("_gen", Pointwise()), None, "test model")

    monkeypatch.setattr(inf, "load_model", load_model)
    return served


def test_cli_enhance(tmp_path, fake_model):
    root = _photos(tmp_path / "in")
    fake_model["_gen"] = SliderEditor({"saturation": 0.5})
    res = CliRunner().invoke(
        app,
        [
            "enhance",
            str(root),
            "--checkpoint",
            "x.pt",
            "--out",
            str(tmp_path / "o"),
            "--xmp",
            "--quiet",
            "--format",
            "jpg",
            "--tile",
            "64",
        ],
    )
    assert res.exit_code == 0, res.output
    assert fake_model["checkpoint"] == Path("x.pt") and fake_model["device"] == "auto"
    assert "Enhanced 2 image(s)" in res.output and "broken.png" in res.output
    assert (tmp_path / "o" / "sub" / "b.jpg").is_file() and (tmp_path / "o" / "sub" / "b.xmp").is_file()
    assert json.loads((tmp_path / "o" / "a.json").read_text())["params"]["saturation"] == 0.5


def test_cli_enhance_errors(tmp_path, fake_model):
    res = CliRunner().invoke(app, ["enhance", str(tmp_path / "nope.jpg"), "--run", "r1", "--out", str(tmp_path)])
    assert res.exit_code != 0
    assert isinstance(res.exception, DataError) and "does not exist" in str(res.exception)


def test_cli_enhance_with_the_released_rl_policy(tmp_path):
    """--recipe path end to end: the RL editor with the released demo weights writes sliders on the 1/16 grid."""
    weights = shared_path("reference", "kosugi", "generator_weights_for_demo.npz")
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "rl_edit.yaml"
    if not recipe.is_file():
        pytest.skip("recipes/rl_edit.yaml is absent")
    src = shared_path("data", "lowlight", "DICM", "01.jpg")
    small = tmp_path / "in" / "dicm01.png"
    small.parent.mkdir()
    Image.open(src).convert("RGB").resize((120, 160)).save(small)
    res = CliRunner().invoke(
        app,
        [
            "enhance",
            str(small.parent),
            "--recipe",
            str(recipe),
            "--set",
            f"model.generator.weights={weights}",
            "--out",
            str(tmp_path / "out"),
            "--xmp",
            "--quiet",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    side = json.loads((tmp_path / "out" / "dicm01.json").read_text())
    values = np.array(list(side["params"].values()))
    assert len(values) == 12 and np.allclose(values * 16, np.round(values * 16)) and np.abs(values).max() <= 1
    out = inf.read_image(tmp_path / "out" / "dicm01.png")
    assert out.shape == (3, 160, 120)
    assert (tmp_path / "out" / "dicm01.xmp").is_file()
