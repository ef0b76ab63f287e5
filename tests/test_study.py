# ruff: noqa: F811  (pytest fixtures imported from test_train_infra_tiny)
"""tools/study.py end to end with a budget of seconds per recipe on tiny folders (the real study is not a test)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient
from PIL import Image

from tests.test_train_infra_tiny import mlflow_template  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def _study():
    spec = importlib.util.spec_from_file_location("zoo_study_tool", ROOT / "tools" / "study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["zoo_study_tool"] = module
    spec.loader.exec_module(module)
    return module


def _folder(path: Path, n: int, size: int, low: int, high: int, seed: int) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for k in range(n):
        base = (xx * rng.uniform(0.3, 1) + yy * rng.uniform(0.3, 1)) / 2
        img = low + (high - low) * (base[..., None] * rng.uniform(0.6, 1.0, 3) + rng.normal(0, 0.03, (size, size, 3)))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path / f"im{k}.png")
    return path


def test_default_recipe_list_and_overrides(tmp_path):
    study = _study()
    names = study.default_recipes()
    assert "enlightengan_cpu" in names and "rl_edit" in names
    assert "enlightengan" not in names and "demo_synthetic" not in names  # replaced / not adversarial on photos
    args = study.parse_args(["--minutes", "7", "--work", str(tmp_path)])
    path, overrides = study.recipe_plan("enlightengan_cpu", args)
    assert path.name == "enlightengan.yaml"
    assert "train.max_minutes=7.0" in overrides and "model.losses.sfp.loss.pretrained=false" in overrides
    source = next(o for o in overrides if o.startswith("data.source="))
    assert source.endswith("lowlight/SICE_dark")
    target = next(o for o in overrides if o.startswith("data.target="))
    assert [Path(t).name for t in target.split("=", 1)[1].strip("[]").split(",")] == [
        "BSDS500",
        "SunHays80",
        "Urban100",
    ]
    for name in names:  # identical data and budget for every recipe, and no evaluation set anywhere
        _, ov = study.recipe_plan(name, args)
        assert source in ov and target in ov and "train.max_minutes=7.0" in ov
        assert not any(s in o for o in ov for s in ("DICM", "CBSD68", "McMaster"))


def test_study_smoke(tmp_path, mlflow_template):
    study = _study()
    data = tmp_path / "data"
    src = _folder(data / "dark", 8, 64, 5, 70, 0)
    tgt = _folder(data / "normal", 8, 64, 60, 220, 1)
    dicm = _folder(data / "dicm", 3, 128, 5, 80, 2)
    ref = _folder(data / "ref", 2, 128, 60, 220, 3)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(mlflow_template, work / "mlflow.db")
    out = tmp_path / "docs" / "RESULTS.md"
    argv = ["--minutes", "0.03", "--recipes", "rl_edit_demo,edit_regressor_wgangp", "--threads", "1", "--parallel", "2"]
    argv += ["--source", str(src), "--target", str(tgt), "--dicm", str(dicm), "--fullref", str(ref)]
    argv += ["--work", str(work), "--out", str(out), "--set", "train.batch_size=4", "--set", "train.log_every=1"]
    argv += ["--set", "train.checkpoint_every=1"]
    assert study.main(argv) == 0

    text = out.read_text()
    for row in ("| input | input |", "| histogram_equalization | baseline |", "| clahe | baseline |"):
        assert row in text
    assert "| rl_edit_demo | recipe |" in text and "| edit_regressor_wgangp | recipe |" in text
    assert "0.03 min of training per recipe" in text and "random He-initialised weights" in text
    assert "2 recipes trained at a time" in text
    assert "zoo train recipes/rl_edit_demo.yaml" in text and "## What the table says" in text
    assert (out.parent / "results" / "curves.png").stat().st_size > 1000
    assert (out.parent / "results" / "grid_rl_edit_demo.png").is_file()
    assert (out.parent / "results" / "grid_histogram_equalization.png").is_file()

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("zoo-study")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("zoo.kind") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    trained = {r.data.tags.get("zoo.recipe") for r in children if r.data.tags.get("zoo.kind") != "evaluation"}
    assert trained == {"rl_edit_demo", "edit_regressor_wgangp"}
    evals = {r.data.tags["zoo.eval_model"]: r for r in children if r.data.tags.get("zoo.kind") == "evaluation"}
    assert set(evals) == {"input", "histogram_equalization", "clahe", "gamma", "rl_edit_demo", "edit_regressor_wgangp"}
    he, inp = evals["histogram_equalization"].data.metrics, evals["input"].data.metrics
    assert he["eval/brightness"] > inp["eval/brightness"] and 0 <= he["eval/niqe_improved"] <= 1
    assert {"eval/niqe", "eval/psnr", "eval/ssim", "eval/colorfulness"} <= set(he)


def test_statements_say_where_a_recipe_loses_and_why():
    study = _study()
    entry = study.Entry
    rows = [
        entry("input", "input", scores={"niqe": 4.25, "psnr": 10.0, "brightness": 0.33, "colorfulness": 37.0}),
        entry("histogram_equalization", "baseline", scores={"niqe": 3.75, "psnr": 15.0}),
        entry("clahe", "baseline", scores={"niqe": 3.82, "psnr": 12.0}),
        entry(
            "slow",
            "recipe",
            steps=100,
            recipe_steps=3000,
            scores={"niqe": 3.8, "psnr": 16.0, "brightness": 0.3, "colorfulness": 30.0},
            facts={"random_sfp": True},
        ),
        entry("good", "recipe", scores={"niqe": 3.5, "psnr": 18.0}),
        entry("dark", "recipe", scores={"niqe": 4.4, "psnr": 9.0, "brightness": 0.2, "colorfulness": 40.0}),
        entry("broken", "recipe", error="TrainingError: loss is NaN at step 3"),
    ]
    slow, good, dark, broken = study.statements(rows)
    assert slow.startswith("**slow** is worse on DICM NIQE (3.800) than histogram_equalization (3.750).")
    assert "ran 100 of its 3000 steps" in slow and "mean brightness 0.300" in slow and "random-init VGG16" in slow
    assert "colourfulness 30.0 vs the input's 37.0" in slow and "clahe" not in slow.split("Likely")[0]
    assert good == "**good** beats the input and every baseline on DICM NIQE (3.500) and on PSNR (18.00 dB)."
    assert "worse than the unenhanced input on DICM NIQE (4.400 vs 4.250)" in dark
    assert "below the darkened input's PSNR (9.00 vs 10.00 dB)" in dark and "washes colour" not in dark
    assert broken == "**broken** did not produce a model: TrainingError: loss is NaN at step 3"
