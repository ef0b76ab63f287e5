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
    model_specs: list[str] = typer.Option(
        None,
        "--model",
        help="A model to compare (repeatable): baseline:NAME, generator:NAME, pretrained:NAME, run:RUN_ID, "
        "recipe:PATH, models:/NAME/VERSION, runs:/RUN_ID/model or a checkpoint path.",
    ),
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
        help="Comma-separated metric names (zoo list metric). Default: niqe, mean_brightness, colorfulness, "
        "and psnr, ssim when references exist.",
    ),
    niqe_params: Path = typer.Option(
        None,
        "--niqe-params",
        help="NIQE pristine model .npz (default: $ZOO_NIQE_PARAMS, else the standard model shipped with the zoo).",
        envvar="ZOO_NIQE_PARAMS",
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
    zoo eval --model baseline:clahe --model pretrained:NAME --model models:/NAME/1 --data DIR --baseline
    """
    from rich.console import Console

    from zoo.errors import DataError
    from zoo.eval import (
        DarkeningSpec,
        build_metrics,
        check_outputs,
        evaluate_folder,
        log_to_mlflow,
        print_results,
        write_csv,
        write_grid,
        write_json,
    )

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    pred, ref, data, synthetic_dark = pred or [], ref or [], data or [], synthetic_dark or []
    model_specs = model_specs or []
    has_model = any((checkpoint, run, recipe)) or bool(model_specs)
    if pred and (has_model or data or synthetic_dark):
        raise DataError("--pred scores existing outputs; do not combine it with a model, --data or --synthetic-dark.")
    if not pred and not has_model:
        raise DataError(
            "Give --pred DIR (outputs to score) or a model (--checkpoint, --run, --recipe or --model SPEC) with "
            "--data DIR."
        )
    if has_model and not (data or synthetic_dark):
        raise DataError("A model needs something to enhance: --data DIR and/or --synthetic-dark NORMAL_DIR.")
    sets = pred or data
    if ref and len(ref) != len(sets):
        raise DataError(f"Give one --ref per {'--pred' if pred else '--data'} set ({len(sets)}), got {len(ref)}.")
    refs = list(ref) if ref else [None] * len(sets)
    check_outputs(  # before any work: no output replaces an input, no two options name one file
        pred=pred,
        data=data,
        ref=refs,
        synthetic_dark=synthetic_dark,
        out=out,
        files={"--csv": csv_path, "--json": json_path, "--grid": grid},
    )

    paired = bool(ref) or bool(synthetic_dark)
    if metrics:
        names = [m.strip() for m in metrics.split(",") if m.strip()]
    else:
        names = ["niqe", "mean_brightness", "colorfulness"]  # niqe: the packaged standard model by default
        names += ["psnr", "ssim"] if paired else []
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
        from zoo.compare import evaluate_models
        from zoo.inference import checkpoint_run, load_model
        from zoo.model_sources import parse_model_spec

        named = [("", {"checkpoint": checkpoint, "run_id": run, "recipe": recipe, "overrides": overrides or ()})]
        named = named if any((checkpoint, run, recipe)) else []
        if overrides and not recipe:
            raise DataError("--set overrides apply to --recipe only (a checkpoint or run carries its own recipe).")
        named += [(spec, parse_model_spec(spec)) for spec in model_specs]
        loaded = [(label, load_model(**kw, device=device, tracking_uri=tracking_uri)) for label, kw in named]
        models = [(label or m.source, m.generator) for label, m in loaded]
        if len(loaded) == 1:
            model = loaded[0][1]
            source, run_id = model.source, model.run_id
            if checkpoint is not None and track is not False:
                run_id, ckpt_uri = checkpoint_run(checkpoint)
                uri = tracking_uri or ckpt_uri
        else:  # a comparison: tracked (with --track) as one new evaluation run
            source = "; ".join(m.source for _, m in loaded)
        results = evaluate_models(
            models,
            built,
            data=data,
            refs=refs,
            synthetic_dark=synthetic_dark,
            spec=DarkeningSpec(seed=seed),
            out=out,
            baseline=baseline,
            tile=tile,
            grid_max=grid_rows,
            progress=not quiet,
        )

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
