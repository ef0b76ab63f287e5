"""Several models on the same photos, one table: what ``zoo eval --model A --model B ...`` and the study run.

Each model enhances every ``--data`` folder and every ``--synthetic-dark`` set (the same seeded darkening for all,
so the dark inputs are identical), and is scored with the same metrics. With more than one model the set names
carry the model's label (``DICM [baseline:clahe]``); the unenhanced input is scored once (``DICM (input)``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from torch import nn

from zoo.eval import DarkeningSpec, EvalResult, evaluate_model, evaluate_synthetic_dark

__all__ = ["evaluate_models", "label_dir"]


def label_dir(label: str) -> str:
    """A folder name for a model label (``baseline:clahe`` -> ``baseline_clahe``).

    Example:
        >>> label_dir("models:/enhancer/3")
        'models_enhancer_3'
    """
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", label).strip("_.") or "model"


def evaluate_models(
    models: Sequence[tuple[str, nn.Module]],
    metrics: Mapping[str, nn.Module],
    *,
    data: Sequence[str | os.PathLike[str]] = (),
    refs: Sequence[str | os.PathLike[str] | None] | None = None,
    synthetic_dark: Sequence[str | os.PathLike[str]] = (),
    spec: DarkeningSpec = DarkeningSpec(),
    out: str | os.PathLike[str] | None = None,
    baseline: bool = False,
    tile: int | None = None,
    grid_max: int = 0,
    progress: bool = True,
) -> list[EvalResult]:
    """Enhance and score every set with every model.

    Args:
        models: ``(label, generator)`` pairs; with one model the set names are the folders' names, as
            ``zoo eval`` always named them.
        metrics: built metrics (``zoo.eval.build_metrics``).
        data: folders of inputs (no-reference metrics, and full-reference ones against ``refs``).
        refs: one reference folder (or None) per ``data`` folder.
        synthetic_dark: folders of normal-light photos, darkened with ``spec`` and scored against themselves.
        spec: the seeded synthetic darkening.
        out: keep the enhanced images under ``out/<set>`` (one model) or ``out/<label>/<set>`` (several).
        baseline: also score the unenhanced inputs (once per set).
        tile: tiled inference (see ``zoo.inference.run_generator``).
        grid_max: rows of the comparison grid kept on the first result that has images.
        progress: progress bars.

    Returns:
        The results: per set, each model's in the order given, then the input's (with ``baseline``).
    """
    several = len(models) > 1
    refs = list(refs) if refs is not None else [None] * len(data)
    results: list[EvalResult] = []

    def place(label: str, name: str) -> Path | None:
        if out is None:
            return None
        return Path(out) / label_dir(label) / name if several else Path(out) / name

    def titled(res: list[EvalResult], title: str, label: str, first: bool) -> list[EvalResult]:
        res[0].name = f"{title} [{label}]" if several else res[0].name
        if len(res) > 1:
            res[1].name = f"{title} (input)"
        return res if first or not several else res[:1]

    for d, r in zip(data, refs, strict=True):
        inputs: list[EvalResult] = []
        for k, (label, gen) in enumerate(models):
            res = evaluate_model(
                gen,
                d,
                metrics,
                ref=r,
                out_dir=place(label, Path(d).name),
                baseline=baseline and k == 0,
                tile=tile,
                grid_max=grid_max if not results else 0,
                source=label,
                progress=progress,
            )
            res = titled(res, Path(d).name, label, k == 0)
            results.append(res[0])
            inputs += res[1:]
        results += inputs
    for normal in synthetic_dark:
        inputs = []
        for k, (label, gen) in enumerate(models):
            res = evaluate_synthetic_dark(
                gen,
                normal,
                metrics,
                spec=spec,
                out_dir=place(label, f"{Path(normal).name}_synthetic_dark"),
                baseline=baseline and k == 0,
                tile=tile,
                grid_max=grid_max if not results or not results[0].grid else 0,
                source=label,
                progress=progress,
            )
            res = titled(res, f"{Path(normal).name} (synthetic dark)", label, k == 0)
            results.append(res[0])
            inputs += res[1:]
        results += inputs
    if grid_max and results and not results[0].grid:
        results.sort(key=lambda r: not r.grid)
    return results
