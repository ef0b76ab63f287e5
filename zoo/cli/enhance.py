"""``zoo enhance``: full-resolution inference with any generator (pretrained, checkpoint, MLflow run or model,
recipe, or a training-free generator such as the classical baselines)."""

from __future__ import annotations

from pathlib import Path

import typer

SET_HELP = "Override a value of --recipe: dotted.key=value (YAML scalar or list). Repeatable."


def enhance_cmd(
    inputs: list[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (the inputs' relative layout is kept)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A zoo checkpoint file or run folder."),
    run: str = typer.Option(None, "--run", help="An MLflow run id whose model to use."),
    recipe: Path = typer.Option(None, "--recipe", "-r", help="Build the generator from a recipe (its weights: key)."),
    generator: str = typer.Option(
        None, "--generator", "-g", help="A training-free generator: gamma, clahe, histogram_equalization, ..."
    ),
    pretrained: str = typer.Option(
        None, "--pretrained", help="A model shipped with the zoo (zoo list pretrained). Default when none is named."
    ),
    model_uri: str = typer.Option(
        None, "--model", help="An MLflow model: models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/model."
    ),
    overrides: list[str] = typer.Option(None, "--set", "-s", help=SET_HELP),
    xmp: bool = typer.Option(False, "--xmp", help="Also write Lightroom XMP sidecars (slider-based generators)."),
    tile: int = typer.Option(
        None, "--tile", min=48, help="Run in overlapping TILE x TILE tiles (bounded memory); default: whole image."
    ),
    overlap: int = typer.Option(32, "--overlap", min=0, help="Tile overlap in pixels."),
    fmt: str = typer.Option("png", "--format", help="png (default), jpg, tif, webp, bmp or same (as the input)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store for --run (default: env or local)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Enhance photos at full resolution with a trained generator (default: the default pretrained model).

    Writes one image per input; generators that edit with sliders (RL editing) also write a JSON sidecar with
    the named slider values, and with --xmp an XMP sidecar Lightroom / Camera Raw can read. Unreadable files
    are skipped and listed. Every input gets its own output: inputs that would share a name (a.jpg, a.bmp) keep
    their extension in it (a.jpg.png, a.bmp.png); an output that would replace an input is refused before any work.
    """
    from rich.console import Console

    from zoo.inference import enhance_files, load_model

    if not any((checkpoint, run, recipe, generator, pretrained, model_uri)):
        from zoo.pretrained import DEFAULT

        pretrained = DEFAULT  # no model named: the default pretrained model
    model = load_model(
        checkpoint=checkpoint,
        run_id=run,
        recipe=recipe,
        generator=generator,
        pretrained=pretrained,
        model_uri=model_uri,
        overrides=overrides or (),
        device=device,
        tracking_uri=tracking_uri,
    )
    report = enhance_files(
        model.generator,
        inputs,
        out,
        tile=tile,
        overlap=overlap,
        xmp=xmp,
        fmt=fmt,
        source=model.source,
        progress=not quiet,
    )
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    n = len(report.outputs)
    console.print(
        f"Enhanced {n} image(s) with {model.source} in {report.seconds:.1f} s -> {out}"
        + (f" (+{len(report.sidecars)} sidecar file(s))" if report.sidecars else "")
    )
    if xmp and n and not any(p.suffix == ".xmp" for p in report.sidecars):
        console.print("[yellow]note:[/yellow] --xmp: this generator reports no slider values, so no XMP was written.")
    if report.skipped:
        console.print(f"[yellow]Skipped {len(report.skipped)} file(s):[/yellow]")
        for path, reason in report.skipped:
            console.print(f"  {path}: {reason}")
    if not n:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("enhance")(enhance_cmd)
