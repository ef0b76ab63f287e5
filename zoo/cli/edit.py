"""``zoo edit``: apply an editing software's sliders to full-resolution photos."""

from __future__ import annotations

from pathlib import Path

import typer


def _parse_sets(sets: list[str]) -> dict[str, float]:
    from zoo.errors import ParameterError

    out: dict[str, float] = {}
    for item in sets:
        if "=" not in item:
            raise ParameterError(f"--set expects NAME=VALUE (e.g. --set exposure=0.3), got {item!r}.")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ParameterError(f"--set {key.strip()}: {value!r} is not a number.") from None
    return out


def edit(
    images: list[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively) to edit."),
    set_: list[str] = typer.Option([], "--set", help="NAME=VALUE slider value (repeatable), e.g. exposure=0.3."),
    sidecar: Path | None = typer.Option(
        None, "--sidecar", help="JSON sidecar with slider values (zoo enhance writes them)."
    ),
    software: str = typer.Option(
        None,
        "--software",
        help="Registered software (zoo list software); default: the sidecar's, else lightroom_basic.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Apply slider values (--set and/or --sidecar) to full-resolution photos; writes images and JSON sidecars to OUT.

    Unset sliders are neutral. Outputs keep the input format when it is a common one (else PNG), 8 bits per
    channel; a sidecar NAME.json beside each output records the values used. Folders are searched recursively
    and their layout is mirrored under OUT; inputs that would share an output name keep their extension in it
    (a.jpg -> a.jpg.jpg beside a.png -> a.png.png; see zoo.outputs). An output that would replace an input is
    refused before anything is written. Unreadable files are skipped and listed.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from zoo.editing.software import software_for_sidecar
    from zoo.errors import DataError
    from zoo.inference import collect_images, edit_file, edit_output_path
    from zoo.outputs import OutputError, ensure_dir, plan_outputs, refuse_overwriting_inputs
    from zoo.registry import create

    if software is None and sidecar is not None:  # the sidecar records its software (an editor_chain's operators)
        sw = software_for_sidecar(sidecar)
    else:
        sw = create("software", software or "lightroom_basic")
    values = sw.load_sidecar(sidecar).clone() if sidecar is not None else sw.neutral(1)[0]
    overrides = _parse_sets(set_)
    if overrides:
        named = sw.to_dict(values)
        named.update(overrides)
        values = sw.from_dict(named)
    files = collect_images(images)
    targets = plan_outputs(files, out, lambda rel: edit_output_path(out, rel.name).suffix)
    inputs = [p for p, _ in files] + ([sidecar] if sidecar is not None else [])
    refuse_overwriting_inputs(targets, inputs, sidecars=(".json",))
    ensure_dir(out)
    console = Console(stderr=True)
    skipped: list[str] = []
    written = 0
    with Progress(
        TextColumn("[bold]edit[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as progress:
        task = progress.add_task("", total=len(files))
        for (path, _), target in zip(files, targets, strict=True):
            progress.update(task, description=path.name)
            try:  # the same code path as zoo studio's export
                edit_file(sw, values, path, target, image=target.name, source=str(path))
            except OutputError:  # a full disk or a read-only folder: every next file would fail the same way
                raise
            except (DataError, RuntimeError, OSError) as exc:  # a file that cannot be decoded: skip it, keep going
                skipped.append(str(exc) if isinstance(exc, DataError) else f"{path} ({type(exc).__name__}: {exc})")
                progress.advance(task)
                continue
            written += 1
            progress.advance(task)
    for item in skipped:
        console.print(f"[yellow]skipped[/yellow] {item}", highlight=False)
    if written == 0:
        raise DataError(f"zoo edit: none of the {len(files)} file(s) could be read; nothing was written.")
    console.print(f"wrote {written} image(s) to {out}" + (f", skipped {len(skipped)}" if skipped else ""))


def register(app: typer.Typer) -> None:
    app.command("edit")(edit)
