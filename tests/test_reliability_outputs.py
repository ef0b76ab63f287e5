"""Nothing is lost: no output replaces an input, every input gets its own output (and eval row), write errors are
sentences (a file where a folder is expected, a read-only folder, a full disk)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from zoo import inference as inf
from zoo.cli.main import app, main
from zoo.errors import DataError
from zoo.outputs import OutputError, plan_outputs

ROOT_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class Brighten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        return {"image": (x * self.gain).clamp(0, 1)}


@pytest.fixture
def model(monkeypatch):
    monkeypatch.setattr(inf, "load_model", lambda **kw: inf.LoadedModel(Brighten(), None, "test model"))


def _img(path: Path, seed: int, size=(20, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 120, (*size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(args: list[str], capsys) -> tuple[int, str]:
    """Run the real entry point (what a user runs): exit status and stderr."""
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0), capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- originals


def test_enhance_into_its_own_input_folder_is_refused_before_any_work(tmp_path, model, capsys):
    d = tmp_path / "d"
    for i in range(3):
        _img(d / f"{i:02d}.png", i)
    before = _snapshot(d)
    code, err = _run(["enhance", str(d), "--checkpoint", "x.pt", "--out", str(d), "--quiet"], capsys)
    assert code == 2 and "would replace the input" in err and "00.png" in err
    assert "Traceback" not in err
    assert _snapshot(d) == before  # nothing written, nothing replaced


def test_edit_into_the_photos_folder_or_dot_is_refused(tmp_path, monkeypatch, capsys):
    d = tmp_path / "d"
    photo = _img(d / "01.jpg", 1)
    before = _snapshot(d)
    code, err = _run(["edit", str(photo), "--set", "exposure=0.5", "--out", str(d), "--quiet"], capsys)
    assert code == 2 and "would replace the input" in err and "01.jpg" in err
    monkeypatch.chdir(d)
    code, err = _run(["edit", "01.jpg", "--set", "exposure=0.5", "--out", ".", "--quiet"], capsys)
    assert code == 2 and "01.jpg" in err
    assert _snapshot(d) == before


def test_edit_refuses_when_a_sidecar_would_replace_an_input(tmp_path, capsys):
    photo = _img(tmp_path / "photos" / "a.png", 1)
    d = tmp_path / "d"
    d.mkdir()
    values = d / "a.json"  # the sidecar zoo enhance wrote for a.png, beside its output
    values.write_text(json.dumps({"exposure": 0.25}))
    code, err = _run(["edit", str(photo), "--sidecar", str(values), "--out", str(tmp_path / "d2")], capsys)
    assert code == 0, err  # another folder: fine
    code, err = _run(["edit", str(photo), "--sidecar", str(values), "--out", str(d)], capsys)
    assert code == 2 and "would replace the input" in err and "a.json" in err
    assert json.loads(values.read_text()) == {"exposure": 0.25} and not (d / "a.png").exists()


def test_eval_out_at_the_parent_of_data_is_refused(tmp_path, model, capsys):
    data = tmp_path / "D"
    for i in range(2):
        _img(data / f"{i}.png", i)
    before = _snapshot(data)
    args = ["eval", "--checkpoint", "x.pt", "--data", str(data), "--out", str(tmp_path), "--no-track", "--quiet"]
    code, err = _run([*args, "--metrics", "mean_brightness"], capsys)
    assert code == 2 and "would replace the input" in err and str(data) in err
    assert _snapshot(data) == before


def test_eval_report_files_must_not_replace_inputs_or_each_other(tmp_path, capsys):
    pred = tmp_path / "p"
    _img(pred / "a.png", 0)
    before = _snapshot(pred)
    base = ["eval", "--pred", str(pred), "--metrics", "mean_brightness", "--quiet"]
    code, err = _run([*base, "--grid", str(pred / "a.png")], capsys)
    assert code == 2 and "--grid file" in err and "a.png" in err
    code, err = _run([*base, "--csv", str(tmp_path / "s.txt"), "--json", str(tmp_path / "s.txt")], capsys)
    assert code == 2 and "--csv and --json name the same file" in err
    assert _snapshot(pred) == before


# ----------------------------------------------------------------------------------------------- collisions


def test_plan_outputs_rule():
    files = [(Path(n), Path(n)) for n in ("a.jpg", "a.bmp", "b.jpg", "sub/a.jpg")]
    files += [(Path("other/b.jpg"), Path("b.jpg"))]  # same relative path from a second input folder
    names = [p.relative_to("o").as_posix() for p in plan_outputs(files, "o", lambda rel: ".png")]
    assert names == ["a.jpg.png", "a.bmp.png", "b.jpg.png", "sub/a.png", "b.jpg-2.png"]
    assert len({Path(n).with_suffix("").as_posix() for n in names}) == len(names)  # sidecars are unique too


def test_enhance_gives_every_input_its_own_output(tmp_path, model, capsys):
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    for i, ext in enumerate(("jpg", "bmp", "tif", "webp")):
        _img(d1 / f"a.{ext}", i)
    _img(d1 / "b.png", 7)
    _img(d2 / "b.png", 8)
    out = tmp_path / "out"
    code, err = _run(["enhance", str(d1), str(d2), "--checkpoint", "x.pt", "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(written) == 6 and "Enhanced 6 image(s)" in err
    assert written == sorted(["a.jpg.png", "a.bmp.png", "a.tif.png", "a.webp.png", "b.png.png", "b.png-2.png"])


def test_edit_accepts_folders_and_sidecars_do_not_collide(tmp_path, capsys):
    d = tmp_path / "d"
    _img(d / "a.jpg", 0)
    _img(d / "a.png", 1)
    _img(d / "sub" / "c.png", 2)
    out = tmp_path / "o"
    code, err = _run(["edit", str(d), "--set", "exposure=0.3", "--out", str(out), "--quiet"], capsys)
    assert code == 0 and "IsADirectoryError" not in err, err
    images = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.suffix != ".json")
    sidecars = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert images == ["a.jpg.jpg", "a.png.png", "sub/c.png"]
    assert sidecars == ["a.jpg.json", "a.png.json", "sub/c.json"]
    assert json.loads((out / "a.jpg.json").read_text())["source"].endswith("a.jpg")


def test_eval_pred_keeps_a_row_for_every_readable_image(tmp_path):
    from zoo.eval import build_metrics, evaluate_folder

    pred, ref = tmp_path / "p", tmp_path / "r"
    _img(pred / "a.jpg", 0)
    _img(pred / "a.bmp", 1)
    _img(pred / "b.png", 2)
    _img(ref / "a.png", 3)
    _img(ref / "b.png", 4)
    result = evaluate_folder(pred, build_metrics(["mean_brightness", "psnr"]), ref=ref, progress=False)
    assert sorted(r["image"] for r in result.rows) == ["a.bmp", "a.jpg", "b"]
    assert all(np.isfinite(r["psnr"]) for r in result.rows)  # both a.* pair with a.png
    assert result.unmatched_ref == [] and result.unmatched_pred == []


def test_eval_model_rows_and_kept_outputs_are_one_per_input(tmp_path, model):
    from zoo.eval import build_metrics, evaluate_model

    data = tmp_path / "D"
    _img(data / "x.jpg", 0)
    _img(data / "x.png", 1)
    res = evaluate_model(Brighten(), data, build_metrics(["mean_brightness"]), out_dir=tmp_path / "k", progress=False)
    assert sorted(r["image"] for r in res[0].rows) == ["x.jpg", "x.png"]
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["x.jpg.png", "x.png.png"]


# ----------------------------------------------------------------------------------------------- write errors


def test_output_folder_that_is_a_file(tmp_path, model, capsys):
    _img(tmp_path / "in" / "a.png", 0)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    code, err = _run(["enhance", str(tmp_path / "in"), "-c", "x.pt", "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "is a file, not a folder" in err and "Traceback" not in err
    code, err = _run(["edit", str(tmp_path / "in"), "--out", str(blocker), "--quiet"], capsys)
    assert code == 2 and "is a file, not a folder" in err
    code, err = _run(
        ["eval", "--pred", str(tmp_path / "in"), "-m", "mean_brightness", "--csv", str(blocker / "x")], capsys
    )
    assert code == 2 and "is a file, not a folder" in err
    code, err = _run(["niqe-fit", str(tmp_path / "in"), "-o", str(tmp_path)], capsys)
    assert code == 2 and "is a folder; give a file name" in err


def test_read_only_output_folder(tmp_path, model, monkeypatch, capsys):
    """A read-only folder (simulated with EACCES where the tests run as root, who may write anywhere)."""
    from PIL import Image as PILImage

    _img(tmp_path / "in" / "a.png", 0)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if ROOT_IS_ROOT:

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(PILImage.Image, "save", denied)
        monkeypatch.setattr(Path, "write_text", denied)
    try:
        code, err = _run(["enhance", str(tmp_path / "in"), "-c", "x.pt", "--out", str(ro), "--quiet"], capsys)
        assert code == 2 and "no permission to write" in err and "a.png" in err
        code, err = _run(["edit", str(tmp_path / "in"), "--out", str(ro), "--quiet"], capsys)
        assert code == 2 and "no permission to write" in err
        code, err = _run(
            ["eval", "--pred", str(tmp_path / "in"), "-m", "mean_brightness", "--json", str(ro / "s.json")], capsys
        )
        assert code == 2 and "no permission to write" in err and "s.json" in err
    finally:
        ro.chmod(0o755)


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_stops_the_batch_with_a_sentence(tmp_path, model, monkeypatch, capsys):
    from PIL import Image as PILImage

    for i in range(3):
        _img(tmp_path / "in" / f"{i}.png", i)
    monkeypatch.setattr(PILImage.Image, "save", _disk_full)
    code, err = _run(["enhance", str(tmp_path / "in"), "-c", "x.pt", "--out", str(tmp_path / "o"), "-q"], capsys)
    assert code == 2 and "the disk is full" in err and "0.png" in err
    assert err.count("the disk is full") == 1  # stops at the first file instead of "skipping" every one
    code, err = _run(["edit", str(tmp_path / "in"), "--out", str(tmp_path / "e"), "--quiet"], capsys)
    assert code == 2 and "the disk is full" in err


def test_full_disk_for_reports_niqe_fit_and_swap(tmp_path, monkeypatch, capsys):
    _img(tmp_path / "in" / "a.png", 0)
    monkeypatch.setattr(Path, "write_text", _disk_full)
    code, err = _run(
        ["eval", "--pred", str(tmp_path / "in"), "-m", "mean_brightness", "--json", str(tmp_path / "j")], capsys
    )
    assert code == 2 and "Cannot write" in err and "the disk is full" in err
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "enlightengan.yaml"
    code, err = _run(
        ["swap", str(recipe), "model.generator", "enlightengan_unet", "-o", str(tmp_path / "r.yaml")], capsys
    )
    assert code == 2 and "the disk is full" in err and "r.yaml" in err
    monkeypatch.undo()
    import builtins

    real_open = builtins.open

    def open_full(file, mode="r", *a, **k):
        if "w" in mode and str(file).endswith("model.npz"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *a, **k)

    from zoo.metrics import niqe as nq

    monkeypatch.setattr(nq, "fit_pristine", lambda *a, **k: (nq.PristineModel.load(nq.DEFAULT_PARAMS), 500))
    monkeypatch.setattr(builtins, "open", open_full)
    code, err = _run(["niqe-fit", str(tmp_path / "in"), "-o", str(tmp_path / "model.npz"), "-q"], capsys)
    assert code == 2 and "the disk is full" in err and "model.npz" in err


def test_write_errors_inside_a_batch_are_not_mistaken_for_bad_inputs(tmp_path, monkeypatch):
    _img(tmp_path / "in" / "a.png", 0)
    monkeypatch.setattr(inf, "write_image", lambda *a, **k: (_ for _ in ()).throw(OutputError("Cannot write x.")))
    with pytest.raises(OutputError):
        inf.enhance_files(Brighten(), [tmp_path / "in"], tmp_path / "o", progress=False)
    assert isinstance(OutputError("x"), DataError)


def test_runner_reports_edit_folder_without_isadirectoryerror(tmp_path):
    _img(tmp_path / "in" / "a.png", 0)
    res = CliRunner().invoke(app, ["edit", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "a.png").is_file()


def test_export_output_problems_are_not_blamed_on_torch_export(tmp_path, model, monkeypatch, capsys):
    import tempfile

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, err = _run(["export", "-c", "x.pt", "--onnx", str(tmp_path)], capsys)
    assert code == 2 and "is a folder; give a file name" in err and "torch.export" not in err
    code, err = _run(["export", "-c", "x.pt", "--onnx", str(blocker / "m.onnx")], capsys)
    assert code == 2 and "is a file, not a folder" in err and "torch.export" not in err

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    code, err = _run(["export", "-c", "x.pt", "--onnx", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and "no permission to write" in err and "m.onnx" in err and "torch.export" not in err
