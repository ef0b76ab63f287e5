"""``zoo studio``: a local web page where the model proposes the sliders and a person adjusts them."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer

SET_HELP = "Override a value of --recipe: dotted.key=value (YAML scalar or list). Repeatable."


def load_studio_model(
    sources: dict[str, object],
    overrides: list[str],
    software: str | None,
    device: str = "cpu",
    tracking_uri: str | None = None,
):
    """The :class:`zoo.studio.state.StudioModel` for the command's model options (none: the plain editor).

    Args:
        sources: ``zoo.inference.load_model`` keyword -> value (``checkpoint``, ``run_id``, ``recipe``,
            ``generator``, ``pretrained``, ``model_uri``); ``None`` values are ignored.
        overrides: ``--set`` overrides of ``--recipe``.
        software: ``--software`` (the plain editor's software).
        device: where the generator runs.
        tracking_uri: the MLflow store for ``--run`` / ``--model``.
    """
    from zoo.errors import DataError
    from zoo.studio.state import studio_model

    given = {k: v for k, v in sources.items() if v}
    if not given:
        return studio_model(None, software=software)
    from zoo.inference import load_model

    accepted = inspect.signature(load_model).parameters
    for key in given:
        if key not in accepted:
            option = {"run_id": "--run", "model_uri": "--model"}.get(key, f"--{key}")
            raise DataError(
                f"{option}: this version of enhance-zoo cannot load models that way yet; "
                "use --checkpoint, --run or --recipe."
            )
    loaded = load_model(**given, overrides=overrides, device=device, tracking_uri=tracking_uri)
    return studio_model(loaded.generator, software=software, description=loaded.source, recipe=loaded.recipe)


def studio_cmd(
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A zoo checkpoint file or run folder."),
    run: str = typer.Option(None, "--run", help="An MLflow run id whose model to use."),
    pretrained: str = typer.Option(None, "--pretrained", help="A pretrained model shipped with enhance-zoo."),
    recipe: Path = typer.Option(None, "--recipe", "-r", help="Build the generator from a recipe (its weights: key)."),
    generator: str = typer.Option(None, "--generator", help="A training-free registered generator (e.g. clahe)."),
    model_uri: str = typer.Option(None, "--model", help="An MLflow model URI (models:/NAME/VERSION, runs:/ID/model)."),
    overrides: list[str] = typer.Option(None, "--set", "-s", help=SET_HELP),
    software: str = typer.Option(
        None, "--software", help="Without a model: the software whose sliders to show (default lightroom_basic)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback unless you say otherwise)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
    max_upload_mb: int = typer.Option(256, "--max-upload-mb", min=1, help="Largest upload accepted, in MiB."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store for --run (default: env or local)."),
) -> None:
    """Serve a local page: drop photos, see the model's proposed sliders applied, move them, export.

    The export (full resolution, JSON and XMP sidecars) is what `zoo edit --sidecar` makes from the same
    sidecar. A generator without sliders (EnlightenGAN, the baselines) gets a before/after view; with no model the
    page is a plain slider editor over --software. Uploads stay in a private temporary folder, removed on exit.
    """
    import logging

    from rich.console import Console

    from zoo.studio.server import serve
    from zoo.studio.state import Studio

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    sources = dict(
        checkpoint=checkpoint,
        run_id=run,
        recipe=recipe,
        generator=generator,
        pretrained=pretrained,
        model_uri=model_uri,
    )
    model = load_studio_model(sources, overrides or [], software, device, tracking_uri)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    studio = Studio(model, max_upload_bytes=max_upload_mb * 2**20)
    console.print(f"{model.reason}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]note:[/yellow] --host {host}: other machines on this network can reach the page.")
    serve(studio, host=host, port=port, announce=lambda line: typer.echo(line))


def register(app: typer.Typer) -> None:
    app.command("studio")(studio_cmd)
