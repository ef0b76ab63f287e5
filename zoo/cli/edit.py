"""``zoo edit``: apply an editing software's sliders to full-resolution photos."""

from __future__ import annotations

from pathlib import Path

import typer

SAME_FORMAT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


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


def _load(path: Path):
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I"):
            arr = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I;16") else 255.0)
            arr = np.repeat(arr[..., None].clip(0, 1), 3, axis=2)
        else:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)


def _save(img, path: Path) -> None:
    import numpy as np
    from PIL import Image

    arr = (img[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def edit(
    images: list[Path] = typer.Argument(..., help="Image files to edit."),
    set_: list[str] = typer.Option([], "--set", help="NAME=VALUE slider value (repeatable), e.g. exposure=0.3."),
    sidecar: Path | None = typer.Option(
        None, "--sidecar", help="JSON sidecar with slider values (zoo enhance writes them)."
    ),
    software: str = typer.Option("lightroom_basic", "--software", help="Registered software (zoo list software)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Apply slider values (--set and/or --sidecar) to full-resolution photos; writes images and JSON sidecars to OUT.

    Unset sliders are neutral. Outputs keep the input format when it is a common one (else PNG), 8 bits per
    channel; a sidecar NAME.json beside each output records the values used. Unreadable files are skipped and listed.
    """
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from zoo.errors import DataError
    from zoo.registry import create

    sw = create("software", software)
    values = sw.load_sidecar(sidecar).clone() if sidecar is not None else sw.neutral(1)[0]
    overrides = _parse_sets(set_)
    if overrides:
        named = sw.to_dict(values)
        named.update(overrides)
        values = sw.from_dict(named)
    out.mkdir(parents=True, exist_ok=True)
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
        task = progress.add_task("", total=len(images))
        for path in images:
            progress.update(task, description=path.name)
            try:
                x = _load(path)
            except Exception as exc:  # any decoding failure: skip the file, keep going
                skipped.append(f"{path} ({type(exc).__name__}: {exc})")
                progress.advance(task)
                continue
            with torch.inference_mode():
                y = sw.apply(x, values.unsqueeze(0))
            suffix = path.suffix.lower() if path.suffix.lower() in SAME_FORMAT else ".png"
            target = out / (path.stem + suffix)
            _save(y, target)
            sw.save_sidecar(target.with_suffix(".json"), values, image=target.name, source=str(path))
            written += 1
            progress.advance(task)
    for item in skipped:
        console.print(f"[yellow]skipped[/yellow] {item}", highlight=False)
    if written == 0:
        raise DataError(f"zoo edit: none of the {len(images)} file(s) could be read; nothing was written.")
    console.print(f"wrote {written} image(s) to {out}" + (f", skipped {len(skipped)}" if skipped else ""))


def register(app: typer.Typer) -> None:
    app.command("edit")(edit)
