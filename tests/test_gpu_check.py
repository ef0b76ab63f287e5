"""tools/gpu_check.py: the CPU fallback (always), and the CUDA checks at tiny sizes (``gpu`` marker).

The CPU test runs the script's fallback on one tiny recipe for a few steps: it must say that it measured no GPU,
in its first line and in the table's title, and write its rows in the benchmark harness's format with every check
met. The ``gpu`` tests run the same checks on CUDA at tiny sizes; conftest skips them without a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from .conftest import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import benchmark as bench  # noqa: E402


def _load_gpu_check():
    spec = importlib.util.spec_from_file_location("zoo_gpu_check", ROOT / "tools" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _load_gpu_check()
TINY_RECIPE = ROOT / "recipes" / "demo_synthetic.yaml"  # procedural data: needs no files


def _rows(text: str) -> list[dict[str, str]]:
    tables = bench.parse_tables(text)
    assert len(tables) == 1, text
    for row in tables[0]:
        assert "_cells" not in row, row
    return tables[0]


def _check_rows_met(rows: list[dict[str, str]]) -> None:
    checks = [r for r in rows if r["benchmark"] in ("gpu_check", "gpu_ddp")]
    assert checks, rows
    for r in checks:
        assert r["met"] == "yes", r


def test_cpu_fallback_says_it_measured_no_gpu_and_writes_harness_rows(tmp_path, capsys, one_thread):
    out_md = tmp_path / "gpu.md"
    env_before = os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")
    rc = gpu_check.main(
        ["--cpu", "--recipes", str(TINY_RECIPE), "--steps", "2", "--skip-ddp", "--skip-speed"]
        + ["--out", str(tmp_path / "work"), "-o", str(out_md)]
    )
    text = capsys.readouterr().out
    assert rc == 0
    first = text.splitlines()[0]
    assert first.startswith("GPU check: NO GPU MEASURED"), first
    assert "**GPU check: NO GPU MEASURED" in text  # the table's title
    block = out_md.read_text()
    assert block in text and block.startswith("**GPU check: NO GPU MEASURED")
    rows = _rows(block)
    cases = {r["case"]: r for r in rows}
    train = cases["demo_synthetic: train 2 steps"]
    assert train["benchmark"] == "gpu_train" and float(train["value"]) > 0 and train["unit"] == "steps/s"
    assert "inactive on the CPU" in train["notes"]
    _check_rows_met(rows)
    # the checks that make sense on the CPU: finite metrics, the checkpoint, CPU system metrics in MLflow
    assert cases["demo_synthetic: non-finite logged metrics"]["value"] == "0"
    ckpt = cases["demo_synthetic: checkpoint on the CPU vs the trained model: slider values"]
    assert ckpt["value"] == "1.0" and ckpt["target"] == "== 1"  # float32 on both sides: every slider agrees
    assert "image mean abs 0.00e+00" in ckpt["notes"]
    assert (
        "cpu_utilization_percentage" in cases["demo_synthetic: MLflow system metrics (CPU only: no GPU here)"]["notes"]
    )
    # the environment the script changed for itself is restored
    assert os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING") == env_before


def test_cpu_fallback_refuses_to_put_a_cpu_table_into_the_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    begin, end = bench.MARKERS["gpu"]
    readme.write_text(f"{begin}\nkept\n{end}\n")
    rc = gpu_check.main(["--cpu", "--skip-train", "--skip-ddp", "--skip-speed", "--readme", str(readme)])
    captured = capsys.readouterr()
    assert rc == 0
    assert "not writing" in captured.err and "measured no GPU" in captured.err
    assert readme.read_text() == f"{begin}\nkept\n{end}\n"


def test_recipe_without_its_data_is_skipped_saying_so(tmp_path):
    recipe = tmp_path / "needs_data.yaml"
    text = (ROOT / "recipes" / "rl_edit.yaml").read_text()
    text = text.replace("../shared/data/lowlight/SICE_dark", str(tmp_path / "no_such_folder_a"))
    recipe.write_text(text.replace("../shared/data/normal", str(tmp_path / "no_such_folder_b")))
    got, _, note = gpu_check.prepare_recipe(
        recipe, device="cpu", steps=2, out=tmp_path / "w", tiny=True, synthetic=False
    )
    assert got is None
    assert note.startswith("skipped: data unavailable") and "no_such_folder" in note and "--synthetic-data" in note
    got, overrides, note = gpu_check.prepare_recipe(
        recipe, device="cpu", steps=2, out=tmp_path / "w", tiny=True, synthetic=True
    )
    assert got is not None and got.data["name"] == "synthetic"
    assert got.data["resize"] == 64 and got.data["hflip"] is True  # the recipe's own sizes and augmentation
    assert got.train.steps == 2 and got.train.batch_size == 2 and "data unavailable" in note


def test_pretrained_weights_are_turned_off_everywhere_in_a_recipe():
    raw = {
        "model": {
            "losses": {"sfp": {"loss": {"name": "self_feature_preserving", "pretrained": True}}},
            "generator": {"name": "g", "pretrained": False},
        },
        "data": {"pretrained": True},
    }
    assert gpu_check._pretrained_overrides(raw) == ["model.losses.sfp.loss.pretrained=false", "data.pretrained=false"]


def test_speed_rows_run_at_tiny_sizes_on_the_cpu(one_thread):
    rows = gpu_check.speed_edit("cpu", 48, 64, repeats=1) + gpu_check.speed_enlightengan("cpu", 32, 48, repeats=1)
    assert [r["unit"] for r in rows] == ["s/image", "s/image"]  # no GPU memory rows without CUDA
    assert all(r["value"] > 0 for r in rows)
    text = bench.render(rows, ["- machine: test"], "python tools/gpu_check.py")
    assert len(_rows(text)) == 2


# ----------------------------------------------------------------------------------------------- CUDA


@pytest.mark.gpu
def test_gpu_training_check_on_a_tiny_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    rows = gpu_check.check_training(TINY_RECIPE, device="cuda", steps=20, out=tmp_path, tiny=True, synthetic=False)
    text = bench.render(rows, ["- machine: test"], "python tools/gpu_check.py")
    parsed = _rows(text)
    _check_rows_met(parsed)
    gpu_metrics = [r for r in parsed if "MLflow GPU system metrics" in r["case"]]
    assert gpu_metrics and int(gpu_metrics[0]["value"]) >= 2 and "cpu_utilization_percentage" in gpu_metrics[0]["notes"]


@pytest.mark.gpu
def test_gpu_speed_rows_have_peak_memory(one_thread):
    rows = gpu_check.speed_edit("cuda", 300, 400, repeats=1) + gpu_check.speed_enlightengan("cuda", 128, 192, 1)
    rows += gpu_check.speed_rl("cuda", batch=4, critic_steps=2, n=2, cpu_n=1)
    memory = [r for r in rows if r["benchmark"] == "gpu_memory"]
    assert len(memory) == 3 and all(r["value"] > 0 for r in memory)
    rl = next(r for r in rows if r["unit"] == "updates/s")
    assert rl["value"] > 0 and "critic step" in rl["notes"] and rl["target"] == f">= {gpu_check.RL_TARGET}"
    assert any("CPU of this machine" in r["case"] for r in rows)


@pytest.mark.gpu
def test_gpu_ddp_logs_one_mlflow_run(tmp_path):
    (row,) = gpu_check.check_ddp(TINY_RECIPE, device="cuda", out=tmp_path, tiny=True, synthetic=False, steps=4)
    assert row["value"] == 1, row
    assert "NCCL" in row["case"]


@pytest.mark.gpu
def test_gpu_script_names_the_card_first(tmp_path, capsys):
    import torch

    rc = gpu_check.main(["--skip-train", "--skip-ddp", "--skip-speed", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert rc == 0
    assert text.splitlines()[0].startswith(f"GPU check on {torch.cuda.get_device_name(0)}")
    assert f"**GPU check on {torch.cuda.get_device_name(0)}**" in text
