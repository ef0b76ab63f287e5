"""Evaluation: score folders of outputs, or enhance then score, with no-reference and full-reference metrics.

Three ways in (``zoo eval``):

- :func:`evaluate_folder`: a folder of outputs (``--pred``), optionally against references (``--ref``) matched
  by relative path without extension (``a/b.png`` pairs with ``a/b.jpg``); unmatched files are reported;
- :func:`evaluate_model`: enhance a folder (``--data``) with a generator, then score the outputs (and, with
  ``baseline``, the unenhanced inputs);
- :func:`evaluate_synthetic_dark`: darken normal-light photos reproducibly (:func:`synthetic_dark`), enhance
  the dark versions and score them against the originals (PSNR / SSIM by default).

Per image, each metric is computed on its own: a pair of different sizes, or an image too small for NIQE, is an
error for that image and metric (listed, NaN in the table), never a crash. Results go to a rich table, CSV /
JSON files, an image grid, and MLflow (:func:`log_to_mlflow`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from zoo.errors import DataError, InputError, ZooError

DEFAULT_METRICS = ("niqe", "mean_brightness", "colorfulness")
PAIRED_METRICS = ("psnr", "ssim")
GRID_SIZE = 256


# ----------------------------------------------------------------------------------------------- metrics


def build_metrics(names: Sequence[str], *, niqe_params: str | None = None) -> dict[str, nn.Module]:
    """Build registered metrics by name (``niqe_params`` is passed to ``niqe`` when given).

    Raises:
        UnknownComponentError: an unknown name, with suggestions.
    """
    from zoo.registry import create

    out: dict[str, nn.Module] = {}
    for name in names:
        name = name.strip()
        if not name or name in out:
            continue
        params = {"params": niqe_params} if name == "niqe" and niqe_params else {}
        out[name] = create("metric", {"name": name, **params})
    if not out:
        raise DataError("No metrics given (e.g. --metrics niqe,psnr,ssim; 'zoo list metric' lists them).")
    return out


def score(metrics: Mapping[str, nn.Module], pred: Tensor, ref: Tensor | None) -> tuple[dict[str, float], list[str]]:
    """Score one image (``3 x H x W``) with every metric; returns values (NaN where a metric failed) and errors."""
    values: dict[str, float] = {}
    errors: list[str] = []
    p = pred.unsqueeze(0) if pred.ndim == 3 else pred
    r = None if ref is None else (ref.unsqueeze(0) if ref.ndim == 3 else ref)
    for name, metric in metrics.items():
        if metric.needs_reference and r is None:
            continue
        try:
            with torch.inference_mode():
                values[name] = float(metric(p, r if metric.needs_reference else None)[0])
        except ZooError as exc:
            values[name] = math.nan
            errors.append(f"{name}: {exc}")
    return values, errors


# ----------------------------------------------------------------------------------------------- results


@dataclasses.dataclass
class EvalResult:
    """The scores of one set of images."""

    name: str
    metrics: dict[str, nn.Module]
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    unmatched_pred: list[str] = dataclasses.field(default_factory=list)
    unmatched_ref: list[str] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    errors: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    grid: list[tuple[Tensor | None, Tensor, Tensor | None]] = dataclasses.field(default_factory=list)

    def means(self) -> dict[str, float]:
        """Mean of each metric over the images where it could be computed (NaN when none)."""
        out = {}
        for name in self.metrics:
            vals = [r[name] for r in self.rows if name in r and math.isfinite(r[name])]
            infs = [r[name] for r in self.rows if name in r and math.isinf(r[name])]
            out[name] = float(np.mean(vals + infs)) if (vals or infs) else math.nan
        return out

    def counts(self) -> dict[str, int]:
        return {n: sum(1 for r in self.rows if n in r and not math.isnan(r[n])) for n in self.metrics}

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (non-finite numbers become null, with ``inf`` written as the string "inf")."""
        return {
            "set": self.name,
            "metrics": {
                n: {
                    "mean": _json_num(v),
                    "n": self.counts()[n],
                    "higher_is_better": bool(self.metrics[n].higher_is_better),
                }
                for n, v in self.means().items()
            },
            "images": [{k: _json_num(v) for k, v in r.items()} for r in self.rows],
            "unmatched_pred": self.unmatched_pred,
            "unmatched_ref": self.unmatched_ref,
            "skipped": [{"file": f, "reason": why} for f, why in self.skipped],
            "errors": [{"image": f, "error": why} for f, why in self.errors],
        }

    def _add(self, image: str, values: Mapping[str, float], errors: Sequence[str]) -> None:
        self.rows.append({"image": image, **values})
        self.errors.extend((image, e) for e in errors)


def _json_num(v: Any) -> Any:
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return v


def _key(rel: Path) -> str:
    return rel.with_suffix("").as_posix()


def _thumb(x: Tensor, size: int = GRID_SIZE) -> Tensor:
    """Fit ``3 x H x W`` into ``size x size`` (aspect kept, white margins) for the comparison grid."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = F.interpolate(x[None].float(), size=(nh, nw), mode="area" if s < 1 else "bilinear")[0]
    out = torch.ones(3, size, size)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[:, y0 : y0 + nh, x0 : x0 + nw] = small.clamp(0, 1)
    return out


# ----------------------------------------------------------------------------------------------- folders


def evaluate_folder(
    pred: str | os.PathLike[str],
    metrics: Mapping[str, nn.Module],
    *,
    ref: str | os.PathLike[str] | None = None,
    name: str | None = None,
    grid_max: int = 0,
    progress: bool = True,
) -> EvalResult:
    """Score a folder of images, pairing with ``ref`` by relative path without extension when given."""
    from zoo.inference import _progress, collect_images, read_image

    pred_files = {_key(rel): p for p, rel in collect_images([pred])}
    ref_files = {_key(rel): p for p, rel in collect_images([ref])} if ref is not None else {}
    result = EvalResult(name or Path(pred).name, dict(metrics))
    if ref is not None:
        result.unmatched_pred = sorted(set(pred_files) - set(ref_files))
        result.unmatched_ref = sorted(set(ref_files) - set(pred_files))
        if not set(pred_files) & set(ref_files) and any(m.needs_reference for m in metrics.values()):
            raise DataError(
                f"No file of {pred} has a namesake in {ref} (pairs are matched by relative path without "
                f"extension, e.g. {next(iter(pred_files))!r}); full-reference metrics need pairs."
            )
    with _progress(progress, len(pred_files), "scoring") as advance:
        for key, path in pred_files.items():
            advance(path.name)
            try:
                p = read_image(path)
                r = read_image(ref_files[key]) if key in ref_files else None
            except DataError as exc:
                result.skipped.append((str(path), str(exc)))
                continue
            if r is not None and r.shape != p.shape:
                result.errors.append(
                    (key, f"size {tuple(p.shape[1:])} differs from the reference's {tuple(r.shape[1:])}")
                )
                r = None  # no-reference metrics still apply to this image
            values, errors = score(metrics, p, r)
            result._add(key, values, errors)
            if len(result.grid) < grid_max:
                result.grid.append((None, _thumb(p), None if r is None else _thumb(r)))
    return result


def evaluate_model(
    generator: nn.Module,
    data: str | os.PathLike[str],
    metrics: Mapping[str, nn.Module],
    *,
    ref: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    baseline: bool = False,
    tile: int | None = None,
    grid_max: int = 0,
    source: str = "",
    progress: bool = True,
) -> list[EvalResult]:
    """Enhance every image of ``data`` with ``generator`` and score the outputs (and the inputs with ``baseline``).

    Returns:
        ``[outputs]`` or ``[outputs, inputs]`` results.
    """
    import tempfile

    from zoo.inference import collect_images, enhance_files, read_image

    set_name = name or Path(data).name
    ref_files = {_key(rel): p for p, rel in collect_images([ref])} if ref is not None else {}
    data_root = Path(data)
    result = EvalResult(set_name, dict(metrics))
    base = EvalResult(f"{set_name} (input)", dict(metrics)) if baseline else None

    def on_image(path: Path, inp: Tensor, out: Tensor) -> None:
        key = _key(path.relative_to(data_root)) if data_root.is_dir() else _key(Path(path.name))
        r = None
        if ref_files:
            if key not in ref_files:
                result.unmatched_pred.append(key)
            else:
                try:
                    r = read_image(ref_files[key])
                except DataError as exc:
                    result.skipped.append((str(ref_files[key]), str(exc)))
                if r is not None and r.shape != out.shape:
                    result.errors.append(
                        (key, f"size {tuple(out.shape[1:])} differs from the reference's {tuple(r.shape[1:])}")
                    )
                    r = None
        values, errors = score(metrics, out, r)
        result._add(key, values, errors)
        if base is not None:
            values, errors = score(metrics, inp, r)
            base._add(key, values, errors)
        if len(result.grid) < grid_max:
            result.grid.append((_thumb(inp), _thumb(out), None if r is None else _thumb(r)))

    with tempfile.TemporaryDirectory(prefix="zoo-eval-") as tmp:
        report = enhance_files(
            generator, [data], out_dir or tmp, tile=tile, source=source, progress=progress, on_image=on_image
        )
    result.skipped += [(str(p), why) for p, why in report.skipped]
    if ref_files:
        seen = {r["image"] for r in result.rows}
        result.unmatched_ref = sorted(set(ref_files) - seen)
    return [result] if base is None else [result, base]


# ----------------------------------------------------------------------------------------------- synthetic


@dataclasses.dataclass(frozen=True)
class DarkeningSpec:
    """The reproducible synthetic darkening of :func:`synthetic_dark`.

    Each image ``x`` (sRGB in [0, 1]) becomes ``quantise8(a * x ** g)`` with an exposure scale ``a`` drawn
    uniformly from ``exposure`` and a gamma ``g`` from ``gamma``, drawn from a generator seeded with
    ``(seed, crc32(relative path))``: the same photo always gets the same darkening, whatever else is in the folder.
    """

    seed: int = 0
    exposure: tuple[float, float] = (0.2, 0.5)
    gamma: tuple[float, float] = (1.5, 2.5)

    def draw(self, key: str) -> tuple[float, float]:
        rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])
        a = float(rng.uniform(*self.exposure))
        g = float(rng.uniform(*self.gamma))
        return a, g


def synthetic_dark(image: Tensor, exposure: float, gamma: float) -> Tensor:
    """Darken ``3 x H x W`` (or batched) sRGB in [0, 1]: ``round(255 * exposure * image ** gamma) / 255``.

    The gamma lowers mid-tones more than highlights and the scale lowers everything, as under-exposure does;
    the 8-bit quantisation makes the dark image exactly what a saved dark photo would hold.
    """
    if not 0 < exposure <= 1 or gamma <= 0:
        raise InputError(f"synthetic_dark: exposure must be in (0, 1] and gamma > 0, got {exposure}, {gamma}.")
    return torch.round(255.0 * exposure * image.clamp(0, 1).pow(gamma)) / 255.0


def make_synthetic_pairs(
    normal: str | os.PathLike[str], out_dir: str | os.PathLike[str], spec: DarkeningSpec = DarkeningSpec()
) -> tuple[Path, list[tuple[str, str]], dict[str, tuple[float, float]]]:
    """Write the darkened versions of every photo of ``normal`` as PNGs under ``out_dir``.

    Returns:
        ``(out_dir, skipped (file, reason), {key: (exposure, gamma)})``.
    """
    from zoo.inference import collect_images, read_image, write_image

    out_dir = Path(out_dir)
    skipped, drawn = [], {}
    for path, rel in collect_images([normal]):
        key = _key(rel)
        try:
            x = read_image(path)
        except DataError as exc:
            skipped.append((str(path), str(exc)))
            continue
        a, g = spec.draw(key)
        drawn[key] = (a, g)
        write_image(out_dir / (key + ".png"), synthetic_dark(x, a, g))
    if not drawn:
        raise DataError(f"No readable photo in {normal} to darken.")
    return out_dir, skipped, drawn


def evaluate_synthetic_dark(
    generator: nn.Module,
    normal: str | os.PathLike[str],
    metrics: Mapping[str, nn.Module],
    *,
    spec: DarkeningSpec = DarkeningSpec(),
    out_dir: str | os.PathLike[str] | None = None,
    baseline: bool = False,
    tile: int | None = None,
    grid_max: int = 0,
    source: str = "",
    progress: bool = True,
) -> list[EvalResult]:
    """Darken the photos of ``normal`` (:class:`DarkeningSpec`), enhance them, score against the originals."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="zoo-dark-") as tmp:
        dark, skipped, _ = make_synthetic_pairs(normal, Path(tmp) / "dark", spec)
        results = evaluate_model(
            generator,
            dark,
            metrics,
            ref=normal,
            out_dir=out_dir,
            name=f"{Path(normal).name} (synthetic dark)",
            baseline=baseline,
            tile=tile,
            grid_max=grid_max,
            source=source,
            progress=progress,
        )
    results[0].skipped = skipped + results[0].skipped
    return results


# ----------------------------------------------------------------------------------------------- outputs


def write_csv(results: Sequence[EvalResult], path: str | os.PathLike[str], *, per_image: bool = False) -> Path:
    """Write set means (``set, metric, mean, n, higher_is_better``) or, with ``per_image``, one row per image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if per_image:
            names = list(dict.fromkeys(n for r in results for n in r.metrics))
            w.writerow(["set", "image", *names])
            for res in results:
                for row in res.rows:
                    w.writerow([res.name, row["image"], *[_csv_num(row.get(n)) for n in names]])
        else:
            w.writerow(["set", "metric", "mean", "n", "higher_is_better"])
            for res in results:
                counts = res.counts()
                for n, v in res.means().items():
                    w.writerow([res.name, n, _csv_num(v), counts[n], res.metrics[n].higher_is_better])
    return path


def _csv_num(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else v


def write_json(results: Sequence[EvalResult], path: str | os.PathLike[str], **extra: Any) -> Path:
    """Write every set's summary and per-image scores as strict JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**extra, "sets": [r.as_dict() for r in results]}, indent=2, allow_nan=False) + "\n")
    return path


def write_grid(results: Sequence[EvalResult], path: str | os.PathLike[str]) -> Path:
    """Write the comparison grid (input | output | reference, columns present in the data) as a PNG."""
    from PIL import Image, ImageDraw

    rows = [row for res in results[:1] for row in res.grid]
    if not rows:
        raise DataError("There is no image to put in the grid (nothing was scored).")
    names = ["input", "output", "reference"]
    cols = [i for i in range(3) if any(r[i] is not None for r in rows)]
    pad, head, s = 4, 18, GRID_SIZE
    canvas = Image.new("RGB", (pad + len(cols) * (s + pad), head + pad + len(rows) * (s + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, i in enumerate(cols):
        draw.text((pad + c * (s + pad) + 4, 3), names[i], fill=(0, 0, 0))
        for r, row in enumerate(rows):
            if row[i] is None:
                continue
            arr = (row[i].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
            canvas.paste(Image.fromarray(arr), (pad + c * (s + pad), head + pad + r * (s + pad)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def metric_key(set_name: str, metric: str) -> str:
    """MLflow metric name ``eval/<set>/<metric>`` with characters MLflow refuses replaced by ``_``."""
    import re

    clean = re.sub(r"[^0-9A-Za-z_\-. /]", "_", set_name).strip().replace(" ", "_")
    return f"eval/{clean}/{metric}"


def log_to_mlflow(
    results: Sequence[EvalResult],
    *,
    run_id: str | None,
    tracking_uri: str | None = None,
    new_run: bool = False,
    experiment: str | None = None,
    artifacts: Sequence[Path] = (),
    tags: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Log the set means as MLflow metrics.

    Onto ``run_id`` itself (the run that produced the model) unless ``new_run``; with ``new_run`` (or no
    ``run_id``) a new evaluation run is created, in the source run's experiment (else ``experiment``, default
    ``zoo-eval``), tagged ``zoo.eval_of`` = the source run id.

    Returns:
        ``(run id logged to, tracking URI)``.
    """
    from mlflow.tracking import MlflowClient

    from zoo.tracking import check_uri, resolve_uri

    uri, _ = resolve_uri(tracking_uri)
    check_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    metrics = {
        metric_key(r.name, n): v
        for r in results
        for n, v in r.means().items()
        if not math.isnan(v) and math.isfinite(v)
    }
    all_tags = {"zoo.kind": "evaluation", **(tags or {})}
    if run_id and not new_run:
        target = run_id
        client.get_run(run_id)  # a clear failure if it is not there
    else:
        exp_id = None
        if run_id:
            exp_id = client.get_run(run_id).info.experiment_id
            all_tags["zoo.eval_of"] = run_id
        if exp_id is None:
            name = experiment or "zoo-eval"
            exp = client.get_experiment_by_name(name)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
        target = client.create_run(exp_id, tags=all_tags, run_name="eval").info.run_id
    import time

    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(
        target,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        tags=[RunTag(k, str(v)) for k, v in all_tags.items()] if target == run_id else [],
    )
    for a in artifacts:
        client.log_artifact(target, str(a), artifact_path="eval")
    if target != run_id:
        client.set_terminated(target)
    return target, uri


def print_results(results: Sequence[EvalResult], *, per_image: bool = False, console: Any = None) -> None:
    """Print one table of set means (and, with ``per_image``, one per set) with rich."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    names = list(dict.fromkeys(n for r in results for n in r.metrics))
    if per_image:
        for res in results:
            t = Table(title=f"{res.name}: per image")
            t.add_column("image")
            for n in names:
                t.add_column(n, justify="right")
            for row in res.rows:
                t.add_row(row["image"], *[_fmt(row.get(n)) for n in names])
            console.print(t)
    t = Table(title="means")
    t.add_column("set")
    t.add_column("images", justify="right")
    for n in names:
        arrow = "↑" if next(r.metrics[n] for r in results if n in r.metrics).higher_is_better else "↓"
        t.add_column(f"{n} {arrow}", justify="right")
    for res in results:
        means = res.means()
        t.add_row(res.name, str(len(res.rows)), *[_fmt(means.get(n)) for n in names])
    console.print(t)
    for res in results:
        if res.unmatched_pred:
            console.print(
                f"[yellow]{res.name}: {len(res.unmatched_pred)} image(s) without a reference:[/yellow] "
                + ", ".join(res.unmatched_pred[:10])
                + (" ..." if len(res.unmatched_pred) > 10 else "")
            )
        if res.unmatched_ref:
            console.print(
                f"[yellow]{res.name}: {len(res.unmatched_ref)} reference(s) without an output:[/yellow] "
                + ", ".join(res.unmatched_ref[:10])
                + (" ..." if len(res.unmatched_ref) > 10 else "")
            )
        for f, why in res.skipped:
            console.print(f"[yellow]skipped[/yellow] {why if f in why else f'{f}: {why}'}")
        for f, why in res.errors:
            console.print(f"[yellow]error[/yellow] {f}: {why}")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.4f}"
    return str(v)
