"""ONNX export with dynamic height and width, checked against PyTorch, and the `zoo export` command.

One real export (about 20 s of torch.export on this machine) serves every check; the --recipe path is checked with
the exporter replaced by a recorder.
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from zoo.errors import InputError
from zoo.export import check_onnx, export_onnx
from zoo.generators.enlightengan import EnlightenGANUNet

pytest.importorskip("onnxruntime")

RECIPE = (
    "name: tiny\nseed: 0\ndata: {name: synthetic, size: 2}\n"
    "model:\n  generator: {name: enlightengan_unet, base_channels: 4}\n"
    "  discriminators:\n    global: {network: {name: patchgan_nonorm, n_layers: 2, ndf: 4}, objective: lsgan}\n"
    "train: {trainer: gan, steps: 1}\ntracking: {enabled: false}\n"
)


@pytest.fixture()
def recipe_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    return path


def test_cli_export_checkpoint_dynamic_sizes_match_pytorch(tmp_path, recipe_file):
    from zoo.cli.main import app
    from zoo.recipe import load_recipe
    from zoo.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    gen = EnlightenGANUNet(base_channels=4)
    for m in gen.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    ckpt = tmp_path / "last.pt"
    save_checkpoint(
        {
            "format": "enhance-zoo-checkpoint",
            "version": 1,
            "step": 1,
            "recipe": load_recipe(recipe_file).to_dict(),
            "modules": {"generator": gen.state_dict()},
            "generator_from": "generator",
        },
        ckpt,
    )
    out = tmp_path / "g.onnx"
    res = CliRunner().invoke(app, ["export", "--checkpoint", str(ckpt), "--onnx", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "max |diff|" in res.output and "widths up to 2200" in res.output
    gen.eval()
    for shape in [(1, 3, 16, 16), (3, 3, 33, 47), (1, 3, 64, 20), (2, 3, 75, 101)]:
        assert check_onnx(out, gen, torch.rand(*shape)) < 1e-4, shape


def test_cli_export_from_a_recipe_builds_its_generator(tmp_path, recipe_file, monkeypatch):
    import zoo.export
    from zoo.cli.main import app

    seen = {}

    def fake_export(generator, path, **kw):
        seen["gen"] = generator
        return zoo.export.ExportReport(
            path=tmp_path / "r.yaml", opset=18, max_abs_diff=0.0, checked_size=(8, 8), max_width=None
        )

    monkeypatch.setattr(zoo.export, "export_onnx", fake_export)
    res = CliRunner().invoke(
        app,
        [
            "export",
            "--recipe",
            str(recipe_file),
            "--set",
            "model.generator.base_channels=2",
            "--onnx",
            str(tmp_path / "x.onnx"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert isinstance(seen["gen"], EnlightenGANUNet) and seen["gen"].head.in_channels == 2


def test_export_errors(tmp_path):
    from zoo.cli.main import app

    with pytest.raises(InputError, match="nn.Module"):
        export_onnx(lambda x: x, tmp_path / "x.onnx")
    res = CliRunner().invoke(app, ["export", "--onnx", str(tmp_path / "d.onnx")])
    assert res.exit_code != 0 and not (tmp_path / "d.onnx").exists()


def test_slider_generator_exports_its_policy_with_the_software_in_metadata(tmp_path):
    """An RL editor exports as its policy (thumbnail -> logits, value); metadata says how to apply the sliders."""
    import json

    import onnx

    from zoo.registry import create

    editor = create("generator", {"name": "rl_editor"})
    report = export_onnx(editor, tmp_path / "policy.onnx")
    assert report.kind == "policy" and report.checked_size == (64, 64)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    model = onnx.load(str(tmp_path / "policy.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["zoo.kind"] == "policy" and meta["zoo.levels"] == str(editor.levels)
    assert json.loads(meta["zoo.sliders"]) == list(editor.software.names)
    assert [o.name for o in model.graph.output] == ["logits", "value"]


def test_untraceable_generator_gets_a_sentence(tmp_path):
    from torch import nn

    class Branchy(nn.Module):
        def forward(self, x):
            if float(x.mean()) > 0.5:  # data-dependent Python control flow
                return {"image": x.flip(-1)}
            return {"image": x}

    with pytest.raises(InputError, match="Branchy cannot be exported to ONNX: torch.export could not trace"):
        export_onnx(Branchy(), tmp_path / "x.onnx")
