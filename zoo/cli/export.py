"""``zoo export``: write a generator as an ONNX model (dynamic height and width), checked against PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer


def export_cmd(
    onnx: Path = typer.Option(..., "--onnx", help="The .onnx file to write."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A zoo checkpoint (or run folder)."),
    run: str = typer.Option(None, "--run", help="An MLflow run id whose generator to export."),
    recipe: Path = typer.Option(
        None, "--recipe", "-r", help="Export the generator a recipe builds (with its weights parameter, if any)."
    ),
    overrides: list[str] = typer.Option(None, "--set", "-s", help="Recipe overrides a.b.c=value (with --recipe)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store for --run."),
    opset: int = typer.Option(18, help="ONNX opset version."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare onnxruntime with PyTorch after export."),
) -> None:
    """Export a generator to ONNX with dynamic batch, height and width; prints the check against PyTorch."""
    from rich.console import Console

    from zoo.export import export_onnx
    from zoo.inference import load_model
    from zoo.outputs import check_writable, ensure_parent

    check_writable(ensure_parent(onnx))  # an I/O problem is said as one, before the export (not blamed on it)

    model = load_model(
        checkpoint=checkpoint,
        run_id=run,
        recipe=recipe,
        overrides=overrides or (),
        device="cpu",
        tracking_uri=tracking_uri,
    )
    generator, origin = model.generator, model.source
    report = export_onnx(generator, onnx, opset=opset, check=check)
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    size = report.path.stat().st_size / 2**20
    console.print(f"wrote {report.path} ({size:.1f} MiB, opset {report.opset}) from {origin}")
    if report.kind == "policy":
        console.print(
            "slider generator: exported its policy (input: the 64 x 64 thumbnail; outputs: logits N x K x L, value);"
            " the slider values are applied by the editing software named in the file's metadata (zoo edit)"
        )
    elif report.kind == "regressor":
        console.print(
            "slider generator: exported its regressor (input: the thumbnail; output: params N x K slider values);"
            " the values are applied by the editing software named in the file's metadata (zoo edit)"
        )
    if report.max_width is not None:
        console.print(
            f"input widths up to {report.max_width} px (wider photos: downsample first, as the generator does)"
        )
    if report.max_abs_diff is not None:
        h, w = report.checked_size
        console.print(f"onnxruntime vs PyTorch at N x 3 x {h} x {w}: max |diff| = {report.max_abs_diff:.2e}")


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
