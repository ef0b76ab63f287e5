"""Pretrained models shipped in the package: manifests, the data rule, weights-only loading, listing, the default."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from zoo import pretrained as pre
from zoo.cli.main import app
from zoo.errors import DataError, UnknownComponentError
from zoo.inference import load_model
from zoo.weights import WEIGHTS_FORMAT

pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = pre.list_pretrained()
EVALUATION_SETS = ("DICM", "CBSD68", "McMaster")


def test_there_is_a_default_and_it_is_shipped():
    names = [p.name for p in SHIPPED]
    assert pre.DEFAULT in names and names[0] == pre.DEFAULT


@pytest.mark.parametrize("model", SHIPPED, ids=lambda p: p.name)
def test_manifest_says_how_the_model_was_made(model):
    m = model.manifest
    assert m["name"] == model.name and m["summary"]
    assert m["recipe"]["name"] and (model.folder / m["recipe"]["resolved"]).is_file()
    assert m["command"].split()[m["command"].split().index("zoo") + 1] == "train"
    assert len(m["commit"]) == 40 and int(m["commit"], 16) >= 0
    assert m["training"]["seconds"] > 0 and m["training"]["steps"] > 0
    dicm = m["scores"]["DICM"]
    assert dicm["images"] == 64 and {"niqe", "mean_brightness", "colorfulness"} <= set(dicm)
    assert 2.0 < dicm["niqe"] < 8.0 and 0.0 < dicm["mean_brightness"] < 1.0
    assert m["scores"]["DICM_input"]["niqe"] == pytest.approx(4.2545, abs=0.002)  # the known value of the input
    w = m["weights"]
    assert w["bytes"] == model.weights.stat().st_size <= 8 * 2**20  # a few MB at most
    assert w["sha256"] == pre.sha256(model.weights)


@pytest.mark.parametrize("model", SHIPPED, ids=lambda p: p.name)
def test_never_trained_on_evaluation_photos(model):
    recipe = yaml.safe_load((model.folder / "recipe.yaml").read_text())
    data = recipe["data"]
    folders = [data["source"], *(data["target"] if isinstance(data["target"], list) else [data["target"]])]
    assert folders == model.manifest["data"]["folders"]
    for f in folders:
        assert Path(f).name not in EVALUATION_SETS, f
    assert Path(data["source"]).name == "SICE_dark"
    assert sorted(Path(t).name for t in folders[1:]) == ["BSDS500", "SunHays80", "Urban100"]


@pytest.mark.parametrize("model", SHIPPED, ids=lambda p: p.name)
def test_weights_are_weights_only_and_load(model):
    state = torch.load(model.weights, map_location="cpu", weights_only=True)
    assert state["format"] == WEIGHTS_FORMAT and state["generator_block"]["name"] == model.manifest["generator"]
    assert "weights" not in state["generator_block"]  # no path of the training machine
    gen, info = pre.load_pretrained(model.name)
    assert info.name == model.name and not gen.training
    x = torch.rand(1, 3, 48, 64) * 0.3
    y = gen(x)["image"]
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.equal(y, x)


def test_registry_lists_the_shipped_models():
    from zoo.registry import pretrained_index

    assert list(pretrained_index()) == pre.index_entries()  # registry.yaml is regenerated from the manifests
    res = CliRunner().invoke(app, ["list", "pretrained", "--format", "names"])
    assert res.exit_code == 0 and res.output.split() == [f"pretrained/{p.name}" for p in SHIPPED]
    res = CliRunner().invoke(app, ["list", "pretrained"], terminal_width=200)
    assert res.exit_code == 0 and f"{pre.DEFAULT} (default)" in res.output
    dicm = SHIPPED[0].manifest["scores"]["DICM"]["niqe"]
    assert f"{dicm:.3f}" in res.output


def test_load_model_by_name_and_unknown_names():
    m = load_model(pretrained=pre.DEFAULT, device="cpu")
    assert m.source == f"pretrained {pre.DEFAULT}" and m.recipe["data"]["source"].endswith("SICE_dark")
    typo = pre.DEFAULT[:-1]
    with pytest.raises(UnknownComponentError, match=rf"no pretrained model '{typo}'.*Did you mean '{pre.DEFAULT}'"):
        load_model(pretrained=typo, device="cpu")


def test_a_damaged_weights_file_is_refused(tmp_path):
    shutil.copytree(SHIPPED[0].folder, tmp_path / SHIPPED[0].name)
    weights = tmp_path / SHIPPED[0].name / "generator.pt"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(DataError, match="does not match the SHA-256 in its manifest"):
        pre.load_pretrained(SHIPPED[0].name, root=tmp_path)
    weights.unlink()
    with pytest.raises(DataError, match="weights file .* is missing"):
        pre.load_pretrained(SHIPPED[0].name, root=tmp_path)


def test_enhance_without_a_model_uses_the_default(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 70, (48, 64, 3), dtype=np.uint8)).save(src / "a.png")
    res = CliRunner().invoke(app, ["enhance", str(src), "-o", str(tmp_path / "out"), "-q"])
    assert res.exit_code == 0, res.output
    assert f"pretrained {pre.DEFAULT}" in res.output
    gen, _ = pre.load_pretrained()
    x = torch.from_numpy(np.array(Image.open(src / "a.png"))).permute(2, 0, 1)[None].float() / 255.0
    want = gen(x)["image"][0].permute(1, 2, 0).detach().numpy() * 255.0
    got = np.asarray(Image.open(tmp_path / "out" / "a.png"), dtype=np.float32)
    assert np.abs(got - want).max() <= 1.0
    res = CliRunner().invoke(app, ["enhance", str(src), "-o", str(tmp_path / "o2"), "--pretrained", "nope", "-q"])
    assert isinstance(res.exception, UnknownComponentError) and "zoo list pretrained" in str(res.exception)


def test_make_pretrained_refuses_a_model_trained_on_evaluation_photos():
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "tools" / "make_pretrained.py"
    spec = importlib.util.spec_from_file_location("zoo_make_pretrained_tool", path)
    tool = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tool
    spec.loader.exec_module(tool)
    ok = {"data": {"source": "../shared/data/lowlight/SICE_dark", "target": ["../shared/data/normal/BSDS500"]}}
    assert tool.check_data_rule(ok) == ["../shared/data/lowlight/SICE_dark", "../shared/data/normal/BSDS500"]
    for bad in ("/x/shared/data/lowlight/DICM", "../shared/data/normal/McMaster/", "data/CBSD68"):
        recipe = {"data": {"source": "../shared/data/lowlight/SICE_dark", "target": [bad]}}
        with pytest.raises(SystemExit, match="refused: the checkpoint was trained on evaluation photos"):
            tool.check_data_rule(recipe)
    assert tool._portable("/work/shared/data/normal/Urban100") == "../shared/data/normal/Urban100"
