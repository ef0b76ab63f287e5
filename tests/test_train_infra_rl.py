# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""End to end with the real ``rl`` trainer: the demo recipe on synthetic data, tracked, reloaded by run id."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.test_train_infra_tiny import mlflow_store, mlflow_template  # noqa: F401
from zoo.checkpoint_io import load_generator
from zoo.recipe import load_recipe
from zoo.train import checkpoint as ckpt
from zoo.train.base import train

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "recipes" / "demo_synthetic.yaml"


@pytest.mark.skipif(not DEMO.is_file(), reason="recipes/demo_synthetic.yaml is absent")
def test_rl_demo_recipe_trains_resumes_and_reloads(tmp_path, mlflow_store):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        overrides = [
            "data.size=8",
            "data.height=32",
            "data.width=48",
            "train.steps=2",
            "train.batch_size=4",
            "train.d_steps=2",
            "train.replay_size=16",
            "train.checkpoint_every=1",
            "train.log_every=1",
            "train.sample_every=2",
            "train.samples=2",
            f"train.out_dir={tmp_path / 'runs'}",
            "tracking.system_metrics=false",
        ]
        first = train(load_recipe(DEMO, overrides), tracking_uri=mlflow_store, quiet=True)
        state = ckpt.load_checkpoint(first.checkpoint)
        assert state["trainer"] == "rl" and state["step"] == 2 and state["extra"]  # the replay buffer etc.
        more = train(
            load_recipe(DEMO, [*overrides, "train.steps=3"]), resume=first.run_id, tracking_uri=mlflow_store, quiet=True
        )
        assert more.run_id == first.run_id and more.steps == 3
        assert all(torch.isfinite(torch.tensor(v)) for v in more.metrics.values())
        gen, recipe = load_generator(run_id=first.run_id, tracking_uri=mlflow_store)
        assert recipe["data"]["name"] == "synthetic" and recipe["train"]["trainer"] == "rl"
        x = torch.rand(1, 3, 50, 70)
        with torch.inference_mode():
            out = gen(x)
        assert out["image"].shape == x.shape and 0 <= float(out["image"].min()) and float(out["image"].max()) <= 1
    finally:
        torch.set_num_threads(threads)
