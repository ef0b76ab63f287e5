# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""Trainer base, checkpoints, devices and ``zoo train`` (tracking off here; see test_tracking.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.test_train_infra_tiny import (  # noqa: F401  (fixtures below)
    TinyGenerator,
    tiny_recipe,
    tiny_trainer,  # noqa: F401
)
from zoo.checkpoint_io import load_generator
from zoo.devices import autocast, resolve_device, uses_channels_last
from zoo.errors import DataError, ParameterError, RecipeError, TrainingError
from zoo.recipe import load_recipe
from zoo.train import checkpoint as ckpt
from zoo.train.base import train
from zoo.train.tracking import image_grid

pytestmark = pytest.mark.usefixtures("one_thread")


def _losses(run_dir: Path) -> dict:
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    return state


def _run(tmp_path: Path, name: str = "r.yaml", overrides=(), **kw):
    recipe = load_recipe(tiny_recipe(tmp_path / name, **kw), list(overrides))
    return train(recipe, quiet=True)


def test_train_writes_checkpoints_samples_and_recipe(tmp_path, tiny_trainer):
    res = _run(tmp_path, steps=5)
    assert res.steps == 5 and res.run_id is None
    state = ckpt.load_checkpoint(res.checkpoint)
    assert state["step"] == 5 and state["data_position"] == 5 and state["trainer"] == "tiny_test"
    assert set(state["modules"]) == {"generator", "critic"} and state["generator_from"] == "generator"
    assert set(state["optimizers"]) == {"generator", "critic"} and "generator" in state["schedulers"]
    assert state["extra"]["history"].shape == (5,)
    assert len(state["rng"]) == 1 and state["recipe"]["name"] == "tiny"
    assert sorted(p.name for p in (res.run_dir / "samples").iterdir()) == ["step_0000003.png", "step_0000005.png"]
    assert yaml.safe_load((res.run_dir / "recipe.yaml").read_text())["train"]["steps"] == 5
    assert set(res.metrics) == {"loss/g", "loss/d", "history_mean", "data/decode_failures"}
    assert res.metrics["data/decode_failures"] == 0
    assert not list(res.checkpoint.parent.glob("*.tmp"))


def test_files_failing_to_decode_mid_run_are_counted(tmp_path, tiny_trainer):
    """A file that passes the header scan but fails to decode is skipped, and the run counts it in its metrics."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, n in (("src", 3), ("tgt", 3)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(tmp_path / folder / f"{i}.png")
    data = (tmp_path / "src" / "1.png").read_bytes()
    data_block = f"data={{name: image_folder, source: {tmp_path / 'src'}, target: {tmp_path / 'tgt'}, crop_size: 16}}"
    recipe = load_recipe(tiny_recipe(tmp_path / "r.yaml", steps=3), [data_block])
    (tmp_path / "src" / "1.png").write_bytes(data[: len(data) // 2])  # after the header scan at build time
    with pytest.warns(UserWarning, match="failed to decode"):
        res = train(recipe, quiet=True)
    assert res.metrics["data/decode_failures"] == 1


def test_same_seed_same_losses_and_generator(tmp_path, tiny_trainer):
    a = _run(tmp_path / "a", steps=4) if (tmp_path / "a").mkdir() is None else None
    b = _run(tmp_path / "b", steps=4) if (tmp_path / "b").mkdir() is None else None
    assert a.metrics == b.metrics
    sa, sb = ckpt.load_checkpoint(a.checkpoint), ckpt.load_checkpoint(b.checkpoint)
    for k, v in sa["modules"]["generator"].items():
        torch.testing.assert_close(v, sb["modules"]["generator"][k], rtol=0, atol=0)
    (tmp_path / "c").mkdir()
    c = _run(tmp_path / "c", steps=4, overrides=["seed=4"])
    assert c.metrics != a.metrics


def test_resume_in_process_matches_uninterrupted(tmp_path, tiny_trainer):
    (tmp_path / "full").mkdir()
    (tmp_path / "part").mkdir()
    full = _run(tmp_path / "full", steps=6)
    part = _run(tmp_path / "part", steps=4)  # checkpoint at step 4, then continue to 6 from it
    recipe = load_recipe(tmp_path / "part" / "r.yaml", ["train.steps=6"])
    resumed = train(recipe, resume=str(part.run_dir), quiet=True)
    assert resumed.run_dir == part.run_dir and resumed.steps == 6
    assert resumed.metrics == full.metrics
    s_full, s_res = ckpt.load_checkpoint(full.checkpoint), ckpt.load_checkpoint(resumed.checkpoint)
    for k, v in s_full["modules"]["critic"].items():
        torch.testing.assert_close(v, s_res["modules"]["critic"][k], rtol=0, atol=0)
    torch.testing.assert_close(s_full["extra"]["history"], s_res["extra"]["history"], rtol=0, atol=0)


def test_nonfinite_loss_stops_naming_step_and_keeps_last_good_checkpoint(tmp_path, tiny_trainer):
    with pytest.raises(TrainingError) as info:
        _run(tmp_path, steps=8, nan_at=5)
    msg = str(info.value)
    assert "step 5" in msg and "loss/g" in msg and "nan" in msg.lower() and "step 4)" in msg
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 4


def test_nonfinite_before_any_checkpoint_says_so(tmp_path, tiny_trainer):
    with pytest.raises(TrainingError, match="step 1: .*No checkpoint had been written"):
        _run(tmp_path, steps=3, nan_at=1)


def test_atomic_save_keeps_old_checkpoint_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "ck" / "last.pt"
    ckpt.save_checkpoint({"format": ckpt.FORMAT, "step": 1}, path)

    def broken_save(obj, fh, *a, **k):
        fh.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint({"format": ckpt.FORMAT, "step": 2}, path)
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_load_checkpoint_is_weights_only_and_checks_format(tmp_path):
    torch.save({"format": ckpt.FORMAT, "x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="a pickle that could run code") as info:
        ckpt.load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only=False" not in str(info.value)  # torch's "load it unsafely" advice is not passed on
    torch.save({"conv1_1.weight": torch.zeros(1)}, tmp_path / "foreign.pth")
    with pytest.raises(DataError, match="not an enhance-zoo checkpoint"):
        ckpt.load_checkpoint(tmp_path / "foreign.pth")
    with pytest.raises(DataError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "nope.pt")


def test_rng_state_roundtrip_through_weights_only(tmp_path):
    import random

    ckpt.seed_everything(11)
    state = ckpt.rng_state()
    ckpt.save_checkpoint({"format": ckpt.FORMAT, "rng": [state]}, tmp_path / "r.pt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    ckpt.set_rng_state(ckpt.load_checkpoint(tmp_path / "r.pt")["rng"][0])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_load_generator_rebuilds_the_trained_network(tmp_path, tiny_trainer):
    res = _run(tmp_path, steps=2)
    gen, recipe = load_generator(checkpoint=res.run_dir)
    assert isinstance(gen, TinyGenerator) and not gen.training and recipe["model"] == {"channels": 4}
    state = ckpt.load_checkpoint(res.checkpoint)
    for k, v in gen.state_dict().items():
        torch.testing.assert_close(v, state["modules"]["generator"][k])
    with pytest.raises(DataError, match="exactly one"):
        load_generator()


def test_resume_refuses_another_model_or_trainer(tmp_path, tiny_trainer):
    res = _run(tmp_path, steps=2)
    other = load_recipe(tmp_path / "r.yaml", ["model.channels=6", "train.steps=3"])
    with pytest.raises(TrainingError, match="model.channels: 4 -> 6"):
        train(other, resume=str(res.checkpoint), quiet=True)
    with pytest.raises(TrainingError, match="neither an existing checkpoint"):
        train(load_recipe(tmp_path / "r.yaml"), resume="no/such/thing", quiet=True)


def test_recipe_train_section_is_strict(tmp_path, tiny_trainer):
    with pytest.raises(RecipeError, match="train.chekpoint_every: unknown key.*checkpoint_every"):
        load_recipe(tiny_recipe(tmp_path / "r.yaml"), ["train.chekpoint_every=3"])


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ParameterError, match="Accepted: auto, cpu, cuda, cuda:N, mps"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="CUDA is not available"):
            resolve_device("cuda:1")
    cpu = torch.device("cpu")
    assert not uses_channels_last(cpu, True)
    with autocast(cpu, True):
        assert torch.get_autocast_dtype("cpu") is not None and not torch.is_autocast_enabled("cpu")


def _run_recording_layouts(tmp_path, monkeypatch, device: str) -> tuple:
    """Train the tiny recipe for 2 steps on ``device``, recording the networks and batches the trainer made."""
    from zoo.train import base

    modules, batches = [], []
    add, next_batch = base.Trainer.add_module, base.Trainer.next_batch

    def add_spy(self, name, module, **kw):
        out = add(self, name, module, **kw)
        modules.append(self.module(name))
        return out

    def next_spy(self):
        batch = next_batch(self)
        batches.append(batch)
        return batch

    monkeypatch.setattr(base.Trainer, "add_module", add_spy)
    monkeypatch.setattr(base.Trainer, "next_batch", next_spy)
    res = train(load_recipe(tiny_recipe(tmp_path / "r.yaml", steps=2), [f"train.device={device}"]), quiet=True)
    assert res.steps == 2 and all(np.isfinite(list(res.metrics.values())))
    weights = [p for m in modules for p in m.parameters() if p.dim() == 4]
    images = [v for b in batches for v in b.values() if isinstance(v, torch.Tensor) and v.dim() == 4]
    assert weights and images
    return weights, images


def test_cpu_run_keeps_the_default_layout(tmp_path, tiny_trainer, monkeypatch):
    weights, images = _run_recording_layouts(tmp_path, monkeypatch, "cpu")
    cl = torch.channels_last
    assert not any(w.is_contiguous(memory_format=cl) and not w.is_contiguous() for w in weights)
    assert all(x.is_contiguous() for x in images)


@pytest.mark.gpu
def test_cuda_run_puts_networks_and_batches_channels_last(tmp_path, tiny_trainer, monkeypatch):
    weights, images = _run_recording_layouts(tmp_path, monkeypatch, "cuda")
    assert all(w.is_cuda and w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert all(x.is_cuda and x.is_contiguous(memory_format=torch.channels_last) for x in images)


@pytest.mark.gpu
def test_cuda_autocast_is_bf16():
    """What ``Trainer.autocast()`` gives a trainer's step on CUDA: bf16 autocast (matmuls come out in bf16)."""
    cuda = torch.device("cuda")
    a = torch.randn(8, 8, device=cuda)
    with autocast(cuda, True):
        assert torch.is_autocast_enabled("cuda") and torch.get_autocast_dtype("cuda") == torch.bfloat16
        assert (a @ a).dtype == torch.bfloat16
    with autocast(cuda, False):
        assert (a @ a).dtype == torch.float32


def test_image_grid_layout():
    a = torch.zeros(2, 3, 4, 5)
    b = torch.ones(2, 1, 4, 5)
    grid = image_grid({"a": a, "b": b}, pad=1)
    assert grid.shape == (2 * 5 + 1, 2 * 6 + 1, 3) and grid.dtype == np.uint8
    assert grid[1, 1].tolist() == [0, 0, 0] and grid[1, 7].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="every batch"):
        image_grid({"a": a, "b": torch.zeros(1, 3, 4, 5)})


def test_cli_train_and_errors(tmp_path, tiny_trainer, monkeypatch):
    from zoo.cli.main import app

    monkeypatch.chdir(tmp_path)
    recipe = tiny_recipe(tmp_path / "r.yaml", steps=2)
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(recipe), "--quiet", "--set", "train.log_every=1"])
    assert result.exit_code == 0, result.output
    assert "Trained tiny for 2 steps" in result.output and "checkpoint:" in result.output
    bad = runner.invoke(app, ["train", str(recipe), "--device", "tpu"])
    assert bad.exit_code != 0 and isinstance(bad.exception, ParameterError)
