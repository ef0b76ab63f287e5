"""ONNX export with dynamic height and width, checked against PyTorch, and the `zoo export` command."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from zoo.errors import InputError
from zoo.export import check_onnx, export_onnx
from zoo.generators.enlightengan import EnlightenGANUNet

pytest.importorskip("onnxruntime")
torch.set_num_threads(1)


def test_export_dynamic_sizes_match_pytorch(tmp_path):
    torch.manual_seed(0)
    gen = EnlightenGANUNet(base_channels=4)
    for m in gen.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    report = export_onnx(gen, tmp_path / "g.onnx")
    assert report.path.is_file() and report.max_abs_diff < 1e-4 and report.max_width == 2200
    assert gen.training  # the caller's module is left as it was
    gen.eval()
    for shape in [(1, 3, 16, 16), (3, 3, 33, 47), (1, 3, 64, 20)]:
        x = torch.rand(*shape)
        assert check_onnx(report.path, gen, x) < 1e-4, shape


def test_export_rejects_non_modules(tmp_path):
    with pytest.raises(InputError, match="nn.Module"):
        export_onnx(lambda x: x, tmp_path / "x.onnx")


def test_cli_export_from_recipe_and_checkpoint(tmp_path):
    from zoo.cli.main import app
    from zoo.train.checkpoint import save_checkpoint

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: tiny\nseed: 0\ndata: {name: synthetic, size: 2}\n"
        "model:\n  generator: {name: enlightengan_unet, base_channels: 4}\n"
        "  discriminators:\n    global: {network: {name: patchgan_nonorm, n_layers: 2, ndf: 4}, objective: lsgan}\n"
        "train: {trainer: gan, steps: 1}\ntracking: {enabled: false}\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    out = tmp_path / "from_recipe.onnx"
    res = runner.invoke(app, ["export", "--recipe", str(recipe), "--set", "model.generator.base_channels=2",
                              "--onnx", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "max |diff|" in res.output

    from zoo.recipe import load_recipe

    rec = load_recipe(recipe)
    gen = EnlightenGANUNet(base_channels=4)
    ckpt = tmp_path / "last.pt"
    save_checkpoint({"format": "enhance-zoo-checkpoint", "version": 1, "step": 1, "recipe": rec.to_dict(),
                     "modules": {"generator": gen.state_dict()}, "generator_from": "generator"}, ckpt)
    res = runner.invoke(app, ["export", "--checkpoint", str(ckpt), "--onnx", str(tmp_path / "c.onnx"), "--no-check"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.onnx").is_file()

    res = runner.invoke(app, ["export", "--onnx", str(tmp_path / "d.onnx")])
    assert res.exit_code != 0
