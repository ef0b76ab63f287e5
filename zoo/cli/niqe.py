"""``zoo niqe-fit``: fit a NIQE pristine model from your own pristine photos."""

from __future__ import annotations

from pathlib import Path

import typer


def niqe_fit_cmd(
    folder: list[Path] = typer.Argument(..., help="Folder(s) or files of pristine (sharp, well-exposed) photos."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the model (.npz)."),
    block_size: int = typer.Option(96, "--block-size", min=8, help="Block side in pixels (96 in the NIQE release)."),
    sharpness: float = typer.Option(
        0.75, "--sharpness", min=0.0, max=1.0, help="Keep blocks sharper than this fraction of each image's sharpest."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fit a NIQE pristine model (mean and covariance of the 36 block features) as the NIQE paper does.

    Each photo is turned to gray (MATLAB rgb2gray, 8-bit), cut into blocks, and only the blocks whose local
    sharpness exceeds SHARPNESS x the image's sharpest block are kept. The result loads with
    --niqe-params / ZOO_NIQE_PARAMS like BasicSR's niqe_pris_params.npz.
    """
    from rich.console import Console

    from zoo.errors import DataError
    from zoo.inference import _progress, collect_images, read_image
    from zoo.metrics.niqe import fit_pristine, rgb_to_gray_matlab, to_uint8_numbers
    from zoo.outputs import ensure_parent, refuse_overwriting_inputs, writing

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    files = collect_images(folder)
    refuse_overwriting_inputs([output], [p for p, _ in files], what="pristine model (-o)")
    ensure_parent(output)  # before the fit: a folder, or a file where a folder should be, fails now
    skipped: list[str] = []

    def grays():
        with _progress(not quiet, len(files), "fitting") as advance:
            for path, _ in files:
                advance(path.name)
                try:
                    rgb = to_uint8_numbers(read_image(path)[None])[0]
                except DataError as exc:
                    skipped.append(f"{path}: {exc}")
                    continue
                if min(rgb.shape[:2]) < block_size:
                    skipped.append(f"{path}: smaller than one {block_size} x {block_size} block")
                    continue
                yield rgb_to_gray_matlab(rgb)

    model, n_blocks = fit_pristine(grays(), block_size=block_size, sharpness_threshold=sharpness)
    with writing(output):
        model.save(output)  # exactly this path (numpy alone would append .npz)
    for s in skipped:
        console.print(f"[yellow]skipped[/yellow] {s}")
    used = len(files) - len(skipped)
    console.print(
        f"Fitted a NIQE pristine model on {n_blocks} blocks from {used} photo(s) -> {output} "
        f"(use it with --niqe-params {output} or ZOO_NIQE_PARAMS={output})."
    )


def register(app: typer.Typer) -> None:
    app.command("niqe-fit")(niqe_fit_cmd)
