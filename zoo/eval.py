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
                    "higher_is_better": _direction(self.metrics[n]),
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


def _norm_path(path: Path) -> str:
    return str(Path(path).resolve())


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


# ----------------------------------------------------------------------------------------------- outputs check


def check_outputs(
    *,
    pred: Sequence[Path] = (),
    data: Sequence[Path] = (),
    ref: Sequence[Path | None] = (),
    synthetic_dark: Sequence[Path] = (),
    out: Path | None = None,
    files: Mapping[str, Path | None] | None = None,
) -> None:
    """Refuse, before any work, outputs that would replace an input or each other (what ``zoo eval`` writes).

    Args:
        pred, data, ref, synthetic_dark: the input folders of ``zoo eval``.
        out: the folder that keeps the enhanced images (``--out``): set ``d`` goes to ``out/<d name>``, a
            synthetic set to ``out/<name>_synthetic_dark``.
        files: report files by option (``{"--csv": path, "--json": path, "--grid": path}``).

    Raises:
        DataError: naming the input (or the other option) a file would replace.
    """
    from zoo.inference import collect_images
    from zoo.outputs import ensure_parent, plan_outputs, refuse_overwriting_inputs

    sets = [*pred, *data, *(r for r in ref if r is not None), *synthetic_dark]
    collected = {Path(s): collect_images([s]) for s in sets}
    inputs = [p for pairs in collected.values() for p, _ in pairs]
    if out is not None:
        for d in data:
            targets = plan_outputs(collected[Path(d)], out / Path(d).name, lambda rel: ".png")
            refuse_overwriting_inputs(targets, inputs, what="enhanced image (--out)")
        for normal in synthetic_dark:
            dst = out / f"{Path(normal).name}_synthetic_dark"
            targets = plan_outputs(collected[Path(normal)], dst, lambda rel: ".png")
            refuse_overwriting_inputs(targets, inputs, what="enhanced image (--out)")
    seen: dict[str, str] = {}
    for option, path in (files or {}).items():
        if path is None:
            continue
        refuse_overwriting_inputs([Path(path)], inputs, what=f"{option} file")
        key = str(Path(path).expanduser().resolve())
        if key in seen:
            raise DataError(f"{seen[key]} and {option} name the same file {path}; give each its own.")
        seen[key] = option
        ensure_parent(path)


def _unique_keys(files: Sequence[tuple[Path, Path]]) -> list[str]:
    """Row names of files: the relative path without extension, or with it where two files share that."""
    stems = [_key(rel) for _, rel in files]
    counts: dict[str, int] = {}
    for k in stems:
        counts[k] = counts.get(k, 0) + 1
    return [k if counts[k] == 1 else rel.as_posix() for k, (_, rel) in zip(stems, files, strict=True)]


def _index(files: Sequence[tuple[Path, Path]]) -> dict[str, Path]:
    """Files by unique key, plus by bare relative path without extension where that is unambiguous."""
    out = dict(zip(_unique_keys(files), (p for p, _ in files), strict=True))
    for p, rel in files:
        out.setdefault(rel.as_posix(), p)
    return out


def _match(key: str, rel: Path, refs: Mapping[str, Path]) -> Path | None:
    """The reference of an image: same relative path with extension first, else same path without extension."""
    return refs.get(rel.as_posix()) or refs.get(key) or refs.get(_key(rel))


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

    found = collect_images([pred])
    keys = _unique_keys(found)
    ref_found = collect_images([ref]) if ref is not None else []
    ref_index = _index(ref_found)
    pairs = {key: _match(key, rel, ref_index) for key, (_, rel) in zip(keys, found, strict=True)}
    result = EvalResult(name or Path(pred).name, dict(metrics))
    if ref is not None:
        used = {_norm_path(r) for r in pairs.values() if r is not None}
        result.unmatched_pred = sorted(k for k, r in pairs.items() if r is None)
        result.unmatched_ref = sorted(
            k for k, (p, _) in zip(_unique_keys(ref_found), ref_found, strict=True) if _norm_path(p) not in used
        )
        if not used and any(m.needs_reference for m in metrics.values()):
            raise DataError(
                f"No file of {pred} has a namesake in {ref} (pairs are matched by relative path without "
                f"extension, e.g. {keys[0]!r}); full-reference metrics need pairs."
            )
    with _progress(progress, len(found), "scoring") as advance:
        for key, (path, _) in zip(keys, found, strict=True):
            advance(path.name)
            try:
                p = read_image(path)
                r = read_image(pairs[key]) if pairs[key] is not None else None
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
    ref_found = collect_images([ref]) if ref is not None else []
    ref_files = _index(ref_found)
    inputs = collect_images([data])
    keys = {p: (k, rel) for k, (p, rel) in zip(_unique_keys(inputs), inputs, strict=True)}
    used_refs: set[str] = set()
    result = EvalResult(set_name, dict(metrics))
    base = EvalResult(f"{set_name} (input)", dict(metrics)) if baseline else None

    def on_image(path: Path, inp: Tensor, out: Tensor) -> None:
        key, rel = keys.get(path, (_key(Path(path.name)), Path(path.name)))
        r = None
        if ref_files:
            match = _match(key, rel, ref_files)
            if match is None:
                result.unmatched_pred.append(key)
            else:
                used_refs.add(_norm_path(match))
                try:
                    r = read_image(match)
                except DataError as exc:
                    result.skipped.append((str(match), str(exc)))
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
    if ref_found:
        result.unmatched_ref = sorted(
            k for k, (p, _) in zip(_unique_keys(ref_found), ref_found, strict=True) if _norm_path(p) not in used_refs
        )
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
    from zoo.outputs import plan_outputs

    out_dir = Path(out_dir)
    skipped, drawn = [], {}
    files = collect_images([normal])
    for (path, rel), dst in zip(files, plan_outputs(files, out_dir, lambda rel: ".png"), strict=True):
        key = _key(rel)
        try:
            x = read_image(path)
        except DataError as exc:
            skipped.append((str(path), str(exc)))
            continue
        a, g = spec.draw(key)
        drawn[dst.relative_to(out_dir).with_suffix("").as_posix()] = (a, g)
        write_image(dst, synthetic_dark(x, a, g))
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
    from zoo.outputs import ensure_parent, writing

    path = ensure_parent(path)
    with writing(path), path.open("w", newline="", encoding="utf-8") as fh:
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
                    direction = _direction(res.metrics[n])
                    w.writerow([res.name, n, _csv_num(v), counts[n], "" if direction is None else direction])
    return path


def _csv_num(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else v


def write_json(results: Sequence[EvalResult], path: str | os.PathLike[str], **extra: Any) -> Path:
    """Write every set's summary and per-image scores as strict JSON."""
    from zoo.outputs import ensure_parent, writing

    path = ensure_parent(path)
    text = json.dumps({**extra, "sets": [r.as_dict() for r in results]}, indent=2, allow_nan=False) + "\n"
    with writing(path):
        path.write_text(text, encoding="utf-8")
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
    from zoo.outputs import ensure_parent, writing

    path = ensure_parent(path)
    with writing(path):
        canvas.save(path, format="PNG")
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
    from rich.markup import escape  # set and file names are data: "DICM [baseline:clahe]" is not markup
    from rich.table import Table

    console = console or Console()
    names = list(dict.fromkeys(n for r in results for n in r.metrics))
    if per_image:
        for res in results:
            t = Table(title=f"{escape(res.name)}: per image")
            t.add_column("image")
            for n in names:
                t.add_column(n, justify="right")
            for row in res.rows:
                t.add_row(escape(row["image"]), *[_fmt(row.get(n)) for n in names])
            console.print(t)
    t = Table(title="means")
    t.add_column("set")
    t.add_column("images", justify="right")
    for n in names:
        direction = _direction(next(r.metrics[n] for r in results if n in r.metrics))
        arrow = "" if direction is None else (" ↑" if direction else " ↓")  # a statistic has no better direction
        t.add_column(f"{n}{arrow}", justify="right")
    for res in results:
        means = res.means()
        t.add_row(escape(res.name), str(len(res.rows)), *[_fmt(means.get(n)) for n in names])
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


def _direction(metric: Any) -> bool | None:
    """True when higher is better, False when lower is, None for a statistic with no better direction."""
    value = getattr(metric, "higher_is_better", None)
    return None if value is None else bool(value)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.4f}"
    return str(v)
