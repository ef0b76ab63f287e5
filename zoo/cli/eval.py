"""``zoo eval``: score outputs, or enhance then score, with no-reference and full-reference metrics."""

from __future__ import annotations

from pathlib import Path

import typer

SET_HELP = "Override a value of --recipe: dotted.key=value (YAML scalar or list). Repeatable."


def eval_cmd(
    pred: list[Path] = typer.Option(
        None, "--pred", "-p", help="Folder of outputs to score (repeatable: one set each)."
    ),
    ref: list[Path] = typer.Option(
        None, "--ref", help="Reference folder(s), one per --pred/--data set; pairs match by name without extension."
    ),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="Enhance with a zoo checkpoint, then score."),
    run: str = typer.Option(None, "--run", help="Enhance with the model of an MLflow run, then score."),
    recipe: Path = typer.Option(None, "--recipe", "-r", help="Enhance with a recipe's generator, then score."),
    overrides: list[str] = typer.Option(None, "--set", "-s", help=SET_HELP),
    data: list[Path] = typer.Option(None, "--data", "-d", help="Folder of inputs to enhance and score (repeatable)."),
    synthetic_dark: list[Path] = typer.Option(
        None, "--synthetic-dark", help="Folder of normal-light photos: darken (seeded), enhance, score vs originals."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic darkening."),
    metrics: str = typer.Option(
        None,
        "--metrics",
        "-m",
        help="Comma-separated metric names (zoo list metric). Default: niqe (if its model is configured), "
        "mean_brightness, colorfulness, and psnr, ssim when references exist.",
    ),
    niqe_params: Path = typer.Option(
        None, "--niqe-params", help="NIQE pristine model .npz (default: $ZOO_NIQE_PARAMS).", envvar="ZOO_NIQE_PARAMS"
    ),
    baseline: bool = typer.Option(False, "--baseline", help="Also score the unenhanced inputs (model modes)."),
    per_image: bool = typer.Option(False, "--per-image", help="Print (and write) one row per image."),
    csv_path: Path = typer.Option(None, "--csv", help="Write the scores as CSV."),
    json_path: Path = typer.Option(None, "--json", help="Write the scores as JSON."),
    grid: Path = typer.Option(None, "--grid", help="Write an input | output | reference image grid (PNG)."),
    grid_max: int = typer.Option(8, "--grid-max", min=1, help="Rows of the grid."),
    out: Path = typer.Option(None, "--out", "-o", help="Keep the enhanced images in this folder (model modes)."),
    tile: int = typer.Option(None, "--tile", min=48, help="Enhance in overlapping tiles of this size."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    track: bool = typer.Option(
        None,
        "--track/--no-track",
        help="Log the means to MLflow. Default: on when the model comes from an MLflow run (or a checkpoint of one).",
    ),
    new_run: bool = typer.Option(
        False,
        "--new-run",
        help="Log to a new evaluation run linked to the model's run (tag zoo.eval_of) instead of it.",
    ),
    tracking_uri: str = typer.Option(
        None, "--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI or local)."
    ),
    experiment: str = typer.Option(
        None, "--experiment", help="Experiment of a new evaluation run (default: zoo-eval)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score enhanced images: NIQE, PSNR, SSIM, brightness, colourfulness, ...

    \b
    zoo eval --pred OUT_DIR [--ref GT_DIR] --metrics niqe,psnr,ssim
    zoo eval (--checkpoint CKPT | --run RUN_ID | --recipe RECIPE) --data DIR [--ref DIR]
    zoo eval (--checkpoint CKPT | --run RUN_ID | --recipe RECIPE) --synthetic-dark NORMAL_DIR
    """
    from rich.console import Console

    from zoo.errors import DataError
    from zoo.eval import (
        DarkeningSpec,
        build_metrics,
        evaluate_folder,
        evaluate_model,
        evaluate_synthetic_dark,
        log_to_mlflow,
        print_results,
        write_csv,
        write_grid,
        write_json,
    )

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    pred, ref, data, synthetic_dark = pred or [], ref or [], data or [], synthetic_dark or []
    has_model = any((checkpoint, run, recipe))
    if pred and (has_model or data or synthetic_dark):
        raise DataError("--pred scores existing outputs; do not combine it with a model, --data or --synthetic-dark.")
    if not pred and not has_model:
        raise DataError(
            "Give --pred DIR (outputs to score) or a model (--checkpoint, --run or --recipe) with --data DIR."
        )
    if has_model and not (data or synthetic_dark):
        raise DataError("A model needs something to enhance: --data DIR and/or --synthetic-dark NORMAL_DIR.")
    sets = pred or data
    if ref and len(ref) != len(sets):
        raise DataError(f"Give one --ref per {'--pred' if pred else '--data'} set ({len(sets)}), got {len(ref)}.")
    refs = list(ref) if ref else [None] * len(sets)

    paired = bool(ref) or bool(synthetic_dark)
    if metrics:
        names = [m.strip() for m in metrics.split(",") if m.strip()]
    else:
        names = (["niqe"] if niqe_params else []) + ["mean_brightness", "colorfulness"]
        names += ["psnr", "ssim"] if paired else []
        if not niqe_params:
            console.print("note: niqe left out (no pristine model: --niqe-params PATH or ZOO_NIQE_PARAMS).")
    built = build_metrics(names, niqe_params=str(niqe_params) if niqe_params else None)
    if "niqe" in built:
        built["niqe"].model  # noqa: B018  (fail now, before any enhancing, if its model is missing)
    if not paired and any(m.needs_reference for m in built.values()):
        need = [n for n, m in built.items() if m.needs_reference]
        raise DataError(f"Metric(s) {', '.join(need)} need references: give --ref DIR (or use --synthetic-dark).")

    results = []
    grid_rows = grid_max if grid else 0
    source, run_id, uri = "", None, tracking_uri
    if pred:
        for p, r in zip(pred, refs, strict=True):
            results.append(evaluate_folder(p, built, ref=r, grid_max=grid_rows, progress=not quiet))
    else:
        from zoo.inference import checkpoint_run, load_model

        model = load_model(
            checkpoint=checkpoint,
            run_id=run,
            recipe=recipe,
            overrides=overrides or (),
            device=device,
            tracking_uri=tracking_uri,
        )
        source, run_id = model.source, model.run_id
        if checkpoint is not None and track is not False:
            run_id, ckpt_uri = checkpoint_run(checkpoint)
            uri = tracking_uri or ckpt_uri
        for i, (d, r) in enumerate(zip(data, refs, strict=True)):
            results += evaluate_model(
                model.generator,
                d,
                built,
                ref=r,
                out_dir=(out / d.name) if out else None,
                baseline=baseline,
                tile=tile,
                grid_max=grid_rows if i == 0 else 0,
                source=source,
                progress=not quiet,
            )
        for normal in synthetic_dark:
            results += evaluate_synthetic_dark(
                model.generator,
                normal,
                built,
                spec=DarkeningSpec(seed=seed),
                out_dir=(out / f"{normal.name}_synthetic_dark") if out else None,
                baseline=baseline,
                tile=tile,
                grid_max=grid_rows if not results or not results[0].grid else 0,
                source=source,
                progress=not quiet,
            )
        if not results[0].grid and grid_rows:
            results.sort(key=lambda r: not r.grid)

    print_results(results, per_image=per_image, console=Console())
    written = []
    if csv_path:
        written.append(write_csv(results, csv_path, per_image=per_image))
    if json_path:
        written.append(write_json(results, json_path, model=source or None, seed=seed if synthetic_dark else None))
    if grid:
        written.append(write_grid(results, grid))
    for w in written:
        console.print(f"wrote {w}")

    do_track = track if track is not None else bool(run_id)
    if do_track:
        try:
            target, used_uri = log_to_mlflow(
                results,
                run_id=run_id,
                tracking_uri=uri,
                new_run=new_run or not run_id,
                experiment=experiment,
                artifacts=written,
                tags={"zoo.eval_model": source} if source else None,
            )
            console.print(f"logged eval metrics to MLflow run {target} ({used_uri})")
        except Exception as exc:  # tracking is a side channel: an explicit --track fails, the automatic one warns
            if track:
                raise DataError(f"Could not log the evaluation to MLflow: {exc}") from None
            console.print(f"[yellow]warning:[/yellow] could not log to MLflow run {run_id}: {exc}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
