"""The `gan` trainer on the EnlightenGAN recipe: a few CPU steps on tiny images, the schedule, recipe checks."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.errors import RecipeError
from zoo.recipe import apply_overrides, recipe_from_dict, resolve_file
from zoo.train.gan import GANTrainer, linear_decay

from .conftest import ROOT

TINY = [
    "data.name=synthetic",
    "data.size=4",
    "data.height=40",
    "data.width=40",
    "data.crop_size=32",
    "train.batch_size=2",
    "train.steps=3",
    "train.device=cpu",
    "train.samples=0",
    "tracking.enabled=false",
    "model.generator.base_channels=4",
    "model.discriminators.global.network.n_layers=3",
    "model.discriminators.global.network.ndf=8",
    "model.discriminators.local.network.patch_size=16",
    "model.discriminators.local.network.n_patches=2",
    "model.discriminators.local.network.discriminator.n_layers=2",
    "model.discriminators.local.network.discriminator.ndf=8",
    "model.losses.sfp.loss.pretrained=false",
    "model.losses.sfp.loss.backbone=resnet18",
    "model.losses.sfp.loss.layer=layer1",
    "model.losses.sfp.loss.skip=[]",
]


def tiny_recipe(tmp_path, extra=()):
    raw = resolve_file(ROOT / "recipes" / "enlightengan.yaml")
    for key in ("source", "target"):
        raw["data"].pop(key)
    raw = apply_overrides(raw, [*TINY, f"train.out_dir={tmp_path}", *extra])
    return recipe_from_dict(raw, source=ROOT / "recipes" / "enlightengan.yaml")


def test_recipe_has_the_official_settings():
    raw = resolve_file(ROOT / "recipes" / "enlightengan.yaml")
    assert raw["data"]["crop_size"] == 320 and raw["data"]["darken"] == 0.5 and raw["data"]["darken_factor"] == [2, 4]
    assert raw["train"]["batch_size"] == 32 and raw["train"]["lr"] == 1e-4 and raw["train"]["betas"] == [0.5, 0.999]
    d = raw["model"]["discriminators"]
    assert d["global"]["objective"]["name"] == "ralsgan" and d["global"]["network"]["n_layers"] == 5
    assert d["local"]["objective"]["name"] == "lsgan" and d["local"]["network"]["n_patches"] == 6
    assert raw["model"]["losses"]["sfp"]["patches"] == "local"


def test_few_steps_on_cpu_losses_finite_weights_change(tmp_path):
    recipe = tiny_recipe(tmp_path, ["data.darken=1.0"])
    snapshots = {}

    class Spy(GANTrainer):
        def build(self):
            super().build()
            snapshots["before"] = {
                n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in self._modules.items()
            }

        def train_step(self, batch):
            assert "source_original" in batch  # darkened input; the loss compares with the original
            assert not torch.equal(batch["source"], batch["source_original"])
            out = super().train_step(batch)
            snapshots.setdefault("metrics", []).append(out)
            return out

    result = Spy(recipe, quiet=True).fit()
    assert result.steps == 3 and result.checkpoint is not None and result.checkpoint.is_file()
    for metrics in snapshots["metrics"]:
        for key in ("loss/g", "loss/g_global", "loss/g_local", "loss/sfp", "loss/d_global", "loss/d_local"):
            assert math.isfinite(metrics[key]), key
    state = torch.load(result.checkpoint, weights_only=True)
    assert set(state["modules"]) == {"generator", "d_global", "d_local"}
    for name, before in snapshots["before"].items():
        after = state["modules"][name]
        changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
        assert changed, f"{name} did not change"


def test_linear_decay_matches_the_official_schedule():
    # 100 epochs constant, then -1/100 after each finished epoch
    assert linear_decay(0, 10, 100, 100) == 1.0
    assert linear_decay(100 * 10 + 9, 10, 100, 100) == 1.0  # during epoch 101 (index 100)
    assert linear_decay(101 * 10, 10, 100, 100) == pytest.approx(0.99)
    assert linear_decay(200 * 10, 10, 100, 100) == 0.0
    assert linear_decay(10**6, 10, 100, 100) == 0.0
    assert linear_decay(10**6, 10, 100, 0) == 1.0


def test_recipe_errors(tmp_path):
    with pytest.raises(RecipeError, match="model.losses.sfp.patches: 'nope' is not a local-patch discriminator"):
        tiny_recipe(tmp_path, ["model.losses.sfp.patches=nope"])
    # refused when the recipe loads, before anything is built or trained
    with pytest.raises(RecipeError, match="model.discriminators.global.objective: mse is a content loss"):
        tiny_recipe(tmp_path, ["model.discriminators.global.objective.name=mse", "train.steps=1"])
