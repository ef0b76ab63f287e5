"""`zoo eval`: folder scoring with pairs, model evaluation, synthetic darkening, outputs and MLflow logging."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

import zoo.eval as ev
from zoo import inference as inf
from zoo.cli.main import app
from zoo.errors import DataError

from .conftest import SHARED


class Gamma(nn.Module):
    """A global brightening curve: x ** 0.5."""

    def forward(self, x):
        return {"image": x.clamp(0, 1).sqrt()}


def _img(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def pairs(tmp_path):
    rng = np.random.default_rng(0)
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    _img(ref / "a.jpg", a)  # JPEG reference pairs with the PNG output by name
    _img(ref / "b.png", b)
    _img(ref / "c.png", b[:30])
    _img(ref / "only_ref.png", b)
    _img(pred / "a.png", np.asarray(Image.open(ref / "a.jpg")))  # identical decode -> PSNR inf
    _img(pred / "b.png", np.clip(b.astype(int) + 10, 0, 255).astype(np.uint8))
    _img(pred / "c.png", b)  # size differs from its reference: an error for that pair only
    _img(pred / "only_pred.png", a)
    (pred / "broken.png").write_bytes(b"nope")
    return pred, ref


def test_build_metrics_and_unknown_names():
    built = ev.build_metrics(["psnr", " ssim", "psnr"])
    assert list(built) == ["psnr", "ssim"]
    with pytest.raises(Exception, match="Did you mean 'psnr'"):
        ev.build_metrics(["psnrr"])


def test_evaluate_folder_pairs_by_name(pairs):
    pred, ref = pairs
    metrics = ev.build_metrics(["psnr", "ssim", "mean_brightness"])
    res = ev.evaluate_folder(pred, metrics, ref=ref, progress=False, grid_max=2)
    rows = {r["image"]: r for r in res.rows}
    assert set(rows) == {"a", "b", "c", "only_pred"}
    assert math.isinf(rows["a"]["psnr"]) and rows["a"]["ssim"] == pytest.approx(1.0)
    # b is the reference plus 10 grey levels (clipped at 255): PSNR close to 20 log10(255 / 10)
    assert 27.0 < rows["b"]["psnr"] <= 20 * math.log10(25.5) + 0.5
    assert "psnr" not in rows["c"] and "mean_brightness" in rows["c"]  # no-reference metrics still apply
    assert any(img == "c" and "differs" in why for img, why in res.errors)
    assert res.unmatched_pred == ["broken", "only_pred"] and res.unmatched_ref == ["only_ref"]
    assert [Path(f).name for f, _ in res.skipped] == ["broken.png"]
    assert math.isinf(res.means()["psnr"]) and res.counts()["psnr"] == 2
    assert len(res.grid) == 2 and res.grid[0][0] is None


def test_no_pairs_at_all_is_an_error(tmp_path):
    _img(tmp_path / "p" / "x.png", np.zeros((8, 8, 3), np.uint8))
    _img(tmp_path / "r" / "y.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="namesake"):
        ev.evaluate_folder(tmp_path / "p", ev.build_metrics(["psnr"]), ref=tmp_path / "r", progress=False)


def test_synthetic_darkening_is_reproducible():
    spec = ev.DarkeningSpec(seed=3)
    assert spec.draw("x/photo") == spec.draw("x/photo")
    assert spec.draw("x/photo") != spec.draw("x/other")
    assert spec.draw("x/photo") != ev.DarkeningSpec(seed=4).draw("x/photo")
    a, g = spec.draw("x/photo")
    assert 0.2 <= a <= 0.5 and 1.5 <= g <= 2.5
    x = torch.rand(3, 16, 16)
    dark = ev.synthetic_dark(x, a, g)
    assert (dark <= x + 1e-6).all() and torch.equal(dark * 255, torch.round(dark * 255))
    assert dark.mean() < 0.5 * x.mean()


def test_evaluate_synthetic_dark_scores_against_originals(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("p1", "p2"):
        _img(tmp_path / "normal" / f"{name}.png", rng.integers(60, 200, (24, 32, 3), dtype=np.uint8))
    metrics = ev.build_metrics(["psnr", "ssim", "mean_brightness"])
    identity = nn.Identity()
    identity.forward = lambda x: {"image": x}  # the dark input itself
    base_res = ev.evaluate_synthetic_dark(identity, tmp_path / "normal", metrics, progress=False)[0]
    res, inputs = ev.evaluate_synthetic_dark(Gamma(), tmp_path / "normal", metrics, baseline=True, progress=False)
    assert len(res.rows) == 2 and res.name == "normal (synthetic dark)"
    # brightening the darkened photos must bring them closer to the originals than leaving them dark
    assert res.means()["psnr"] > base_res.means()["psnr"]
    assert inputs.means()["psnr"] == pytest.approx(base_res.means()["psnr"], rel=1e-6)
    assert res.means()["mean_brightness"] > inputs.means()["mean_brightness"]


def test_outputs_csv_json_grid(pairs, tmp_path):
    pred, ref = pairs
    res = ev.evaluate_folder(pred, ev.build_metrics(["psnr", "entropy"]), ref=ref, progress=False, grid_max=3)
    data = json.loads(ev.write_json([res], tmp_path / "s.json").read_text())  # strict JSON: no NaN/Infinity
    s = data["sets"][0]
    assert s["metrics"]["psnr"]["mean"] == "inf" and s["metrics"]["psnr"]["higher_is_better"] is True
    assert {r["image"] for r in s["images"]} >= {"a", "b"}
    with open(ev.write_csv([res], tmp_path / "m.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["metric"] for r in rows} == {"psnr", "entropy"}
    with open(ev.write_csv([res], tmp_path / "p.csv", per_image=True)) as fh:
        per = list(csv.DictReader(fh))
    assert len(per) == 4 and per[0].keys() >= {"set", "image", "psnr", "entropy"}
    grid = Image.open(ev.write_grid([res], tmp_path / "g.png"))
    assert grid.size[0] > 2 * ev.GRID_SIZE and grid.size[1] > 3 * ev.GRID_SIZE  # output | reference, 3 rows


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_eval_pred_ref(pairs, tmp_path):
    pred, ref = pairs
    out_json, out_csv, grid = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "g.png"
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "--pred",
            str(pred),
            "--ref",
            str(ref),
            "--metrics",
            "psnr,ssim,colorfulness",
            "--per-image",
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
            "--grid",
            str(grid),
            "--quiet",
            "--no-track",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "means" in res.output and "only_pred" in res.output and "differs" in res.output
    assert json.loads(out_json.read_text())["sets"][0]["set"] == "pred"
    assert out_csv.is_file() and grid.is_file()


def test_cli_eval_argument_errors(pairs):
    pred, _ = pairs
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "--pred", str(pred), "--metrics", "psnr", "--no-track"])
    assert "need references" in str(r.exception)
    r = runner.invoke(app, ["eval", "--checkpoint", "x.pt"])
    assert "--data" in str(r.exception)
    r = runner.invoke(app, ["eval"])
    assert "--pred" in str(r.exception)


def test_cli_eval_model_modes(tmp_path, monkeypatch):
    monkeypatch.setattr(inf, "load_model", lambda **kw: inf.LoadedModel(Gamma(), None, "gamma"))
    rng = np.random.default_rng(2)
    for i in range(2):
        _img(tmp_path / "dark" / f"{i}.png", rng.integers(0, 60, (20, 20, 3), dtype=np.uint8))
        _img(tmp_path / "normal" / f"{i}.png", rng.integers(60, 200, (20, 20, 3), dtype=np.uint8))
    out_json = tmp_path / "e.json"
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "--recipe",
            "r.yaml",
            "--data",
            str(tmp_path / "dark"),
            "--synthetic-dark",
            str(tmp_path / "normal"),
            "--baseline",
            "--metrics",
            "mean_brightness,psnr",
            "--json",
            str(out_json),
            "--quiet",
            "--out",
            str(tmp_path / "kept"),
            "--grid",
            str(tmp_path / "g.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    sets = {s["set"]: s for s in json.loads(out_json.read_text())["sets"]}
    assert set(sets) == {"dark", "dark (input)", "normal (synthetic dark)", "normal (synthetic dark) (input)"}
    assert (
        sets["dark"]["metrics"]["mean_brightness"]["mean"] > sets["dark (input)"]["metrics"]["mean_brightness"]["mean"]
    )
    assert sets["normal (synthetic dark)"]["metrics"]["psnr"]["n"] == 2
    assert (tmp_path / "kept" / "dark" / "0.png").is_file()
    assert (tmp_path / "g.png").is_file()


def test_mlflow_logging_on_the_source_run_and_a_linked_run(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("train-exp", artifact_location=str(tmp_path / "art"))
    source = client.create_run(exp).info.run_id
    res = ev.EvalResult("DICM", ev.build_metrics(["mean_brightness"]))
    res._add("x", {"mean_brightness": 0.25}, [])
    res._add("y", {"mean_brightness": 0.75}, [])
    target, _ = ev.log_to_mlflow([res], run_id=source, tracking_uri=uri)
    assert target == source
    assert client.get_run(source).data.metrics["eval/DICM/mean_brightness"] == pytest.approx(0.5)
    linked, _ = ev.log_to_mlflow([res], run_id=source, tracking_uri=uri, new_run=True)
    run = client.get_run(linked)
    assert linked != source and run.info.experiment_id == exp
    assert run.data.tags["zoo.eval_of"] == source and "eval/DICM/mean_brightness" in run.data.metrics


@pytest.mark.skipif(
    not (SHARED / "data" / "niqe" / "niqe_pris_params.npz").is_file(), reason="needs ../shared NIQE model"
)
def test_cli_eval_niqe_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_NIQE_PARAMS", str(SHARED / "data" / "niqe" / "niqe_pris_params.npz"))
    rng = np.random.default_rng(3)
    _img(tmp_path / "p" / "x.png", rng.integers(0, 256, (100, 120, 3), dtype=np.uint8))
    _img(tmp_path / "p" / "tiny.png", rng.integers(0, 256, (50, 50, 3), dtype=np.uint8))
    out = tmp_path / "n.json"
    res = CliRunner().invoke(app, ["eval", "--pred", str(tmp_path / "p"), "--json", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())["sets"][0]
    assert s["metrics"]["niqe"]["n"] == 1 and s["metrics"]["niqe"]["mean"] > 0  # default metrics include niqe
    assert any("96 x 96" in e["error"] for e in s["errors"])  # too small for NIQE: an error for that image
