"""NIQE works out of the box (the packaged standard model), niqe-fit refuses singular fits and writes exactly -o,
and the eval table gives mean brightness no "better" direction."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.cli.main import main
from zoo.metrics import niqe as nq

from .conftest import shared_path

ROOT = Path(__file__).resolve().parent.parent


def _run(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def _photo(path: Path, seed: int, size=(200, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = np.kron(rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3)), np.ones((8, 8, 1)))
    Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)).save(path)
    return path


def test_packaged_model_is_the_standard_one(monkeypatch):
    monkeypatch.delenv(nq.ENV_VAR, raising=False)
    assert nq.resolve_params_path(None) == nq.DEFAULT_PARAMS
    shared = nq.PristineModel.load(shared_path("data", "niqe", "niqe_pris_params.npz"))
    packaged = nq.PristineModel.load(nq.DEFAULT_PARAMS)
    assert np.array_equal(shared.mu, packaged.mu) and np.array_equal(shared.cov, packaged.cov)
    assert "XPixelGroup/BasicSR" in (nq.DEFAULT_PARAMS.parent / "PROVENANCE.md").read_text()


def test_eval_niqe_needs_no_params(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(nq.ENV_VAR, raising=False)
    _photo(tmp_path / "p" / "a.png", 0)
    code, out, err = _run(
        ["eval", "--pred", str(tmp_path / "p"), "--metrics", "niqe", "--json", str(tmp_path / "s.json"), "-q"], capsys
    )
    assert code == 0, err
    value = json.loads((tmp_path / "s.json").read_text())["sets"][0]["metrics"]["niqe"]
    assert value["n"] == 1 and 0 < value["mean"] < 100 and value["higher_is_better"] is False


def test_eval_default_metrics_include_niqe_and_brightness_has_no_direction(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(nq.ENV_VAR, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    _photo(tmp_path / "p" / "a.png", 1)
    code, out, err = _run(["eval", "--pred", str(tmp_path / "p"), "--csv", str(tmp_path / "s.csv"), "-q"], capsys)
    assert code == 0, err
    assert "niqe ↓" in out and "colorfulness ↑" in out
    assert "mean_brightness ↑" not in out and "mean_brightness ↓" not in out and "mean_brightness" in out
    rows = {line.split(",")[1]: line.split(",")[-1] for line in (tmp_path / "s.csv").read_text().splitlines()[1:]}
    assert rows["mean_brightness"] == "" and rows["niqe"] == "False" and rows["colorfulness"] == "True"


def test_niqe_fit_on_too_few_blocks_is_refused(tmp_path, capsys):
    _photo(tmp_path / "one" / "a.png", 2, size=(300, 300))  # 9 blocks of 96: a singular covariance
    code, out, err = _run(["niqe-fit", str(tmp_path / "one"), "-o", str(tmp_path / "m.npz"), "-q"], capsys)
    assert code == 2 and "needs at least 72" in err and "Traceback" not in err
    assert not (tmp_path / "m.npz").exists()


def test_niqe_fit_writes_exactly_the_path_given(tmp_path, monkeypatch, capsys):
    _photo(tmp_path / "one" / "a.png", 3)
    model = nq.PristineModel.load(nq.DEFAULT_PARAMS)
    monkeypatch.setattr(nq, "fit_pristine", lambda *a, **k: (model, 500))  # the naming is under test, not the fit
    out = tmp_path / "mymodel"  # no .npz: numpy alone would write mymodel.npz
    code, _, err = _run(["niqe-fit", str(tmp_path / "one"), "-o", str(out), "-q"], capsys)
    assert code == 0, err
    assert out.is_file() and not (tmp_path / "mymodel.npz").exists() and str(out) in err
    assert np.array_equal(nq.PristineModel.load(out).cov, model.cov)


def test_niqe_params_that_is_a_folder_is_not_called_missing(tmp_path):
    from zoo.errors import DataError

    with pytest.raises(DataError, match="is a folder"):
        nq.resolve_params_path(tmp_path)


def test_wheel_ships_the_model(tmp_path):
    """The wheel built from this checkout carries the model and its provenance (hatch includes package data)."""
    pytest.importorskip("hatchling")
    from hatchling.builders.wheel import WheelBuilder

    builder = WheelBuilder(str(ROOT))
    (wheel,) = list(builder.build(directory=str(tmp_path), versions=["standard"]))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"zoo/metrics/data/niqe_pris_params.npz", "zoo/metrics/data/PROVENANCE.md"} <= names
