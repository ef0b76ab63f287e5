"""DDP: two CPU processes under torchrun (gloo) keep identical replicas; rank 0 alone writes the checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.test_train_infra_tiny import tiny_recipe
from zoo.train.checkpoint import load_checkpoint

TINY = Path(__file__).resolve().parent / "test_train_infra_tiny.py"


@pytest.mark.slow
def test_two_gloo_processes_stay_identical(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    recipe = tiny_recipe(tmp_path / "r.yaml", steps=3, checkpoint_every=3, dump_dir=str(dump))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(TINY),
        "train",
        str(recipe),
        "--quiet",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("Trained tiny for 3 steps") == 1  # rank 0 alone reports
    for step in (1, 2, 3):
        r0 = torch.load(dump / f"rank0_step{step}.pt", weights_only=True)
        r1 = torch.load(dump / f"rank1_step{step}.pt", weights_only=True)
        assert r0["batch_sum"] != r1["batch_sum"]  # each rank saw its own shard of the data
        for key, value in r0["weights"].items():
            torch.testing.assert_close(value, r1["weights"][key], rtol=0, atol=0, msg=f"{key} at step {step}")
    first = torch.load(dump / "rank0_step1.pt", weights_only=True)["weights"]
    assert any(not torch.equal(first[k], v) for k, v in r0["weights"].items())  # and they did train
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["step"] == 3
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # per-rank seeds
    for key, value in state["modules"]["generator"].items():
        torch.testing.assert_close(value, r0["weights"][f"generator.{key}"], rtol=0, atol=0)


DEMO = Path(__file__).resolve().parent.parent / "recipes" / "demo_synthetic.yaml"


@pytest.mark.slow
@pytest.mark.skipif(not DEMO.is_file(), reason="recipes/demo_synthetic.yaml is absent")
def test_zoo_train_nproc_2_with_the_rl_trainer(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from zoo.cli.main import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["train", str(DEMO), "--nproc", "2", "--quiet"]
    for item in (
        "data.size=8",
        "data.height=32",
        "data.width=48",
        "train.steps=2",
        "train.batch_size=2",
        "train.d_steps=1",
        "train.samples=0",
        "tracking.enabled=false",
        f"train.out_dir={tmp_path}",
    ):
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (ckpt_path,) = tmp_path.glob("demo_synthetic/*/checkpoints/last.pt")
    state = load_checkpoint(ckpt_path)
    assert state["world_size"] == 2 and state["step"] == 2 and state["trainer"] == "rl"
