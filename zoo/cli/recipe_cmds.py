"""``zoo recipe check|show`` and ``zoo swap``: validate, resolve and edit recipes."""

from __future__ import annotations

from pathlib import Path

import typer

from zoo.errors import ZooError

recipe_app = typer.Typer(help="Validate and print recipes.", no_args_is_help=True)

SET_HELP = "Override a recipe value: dotted.key=value (YAML scalar or list). Repeatable."


def _dump(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, width=120, allow_unicode=True)


def count_parameters(obj: object) -> int | None:
    """Number of parameters of an nn.Module (None for components that are not modules)."""
    parameters = getattr(obj, "parameters", None)
    if parameters is None or not callable(parameters):
        return None
    return sum(p.numel() for p in parameters())


def build_blocks(recipe, *, data: bool = True) -> list[tuple[str, str, str, str]]:
    """Build every component block of a recipe on the CPU; rows of (path, kind, name, size)."""
    from zoo.registry import create

    rows = []
    for path, kind, block in recipe.blocks():
        if kind == "dataset" and not data:
            rows.append((path, kind, block["name"], "not built (--no-data)"))
            continue
        obj = create(kind, block, where=recipe.where(path))
        n = count_parameters(obj)
        if n:  # objectives and other parameter-free modules show "-"
            size = f"{n:,} parameters"
        elif kind == "dataset" and hasattr(obj, "__len__"):
            size = f"{len(obj):,} samples"
        else:
            size = "-"
        rows.append((path, kind, block["name"], size))
    return rows


@recipe_app.command("check")
def check_cmd(
    files: list[Path] = typer.Argument(..., help="Recipe files."),
    overrides: list[str] = typer.Option(None, "--set", "-s", help=SET_HELP),
    data: bool = typer.Option(True, "--data/--no-data", help="Also build the dataset (reads the data folders)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Also run one complete training step on random images of the recipe's sizes (CPU)."
    ),
) -> None:
    """Validate recipes (keys, and the contracts between their components) and build every component on the CPU.

    An impossible combination (a discriminator that cannot take the data's size, an objective that cannot read
    its scores, a policy under the gan trainer...) is refused here, before any tensor is allocated.
    """
    from rich.console import Console
    from rich.table import Table

    from zoo.recipe import load_recipe

    console = Console(soft_wrap=True)
    failed = 0
    for file in files:
        try:
            recipe = load_recipe(file, overrides or [])
            rows = build_blocks(recipe, data=data)
        except ZooError as exc:
            failed += 1
            text = str(exc)
            shown = text if text.startswith(str(file)) else f"{file}: {text}"
            console.print(f"[red]FAIL[/red] {shown}", markup=True, highlight=False)
            continue
        table = Table(
            title=f"[green]OK[/green] {file} ({recipe.name}, trainer {recipe.train.trainer})", title_justify="left"
        )
        for col in ("block", "kind", "name", "size"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        if dry_run:
            from zoo.train.dry_run import dry_run as run_one_step

            try:
                result = run_one_step(recipe)
            except ZooError as exc:
                failed += 1
                text = str(exc)
                console.print(f"[red]FAIL[/red] {text}", markup=True, highlight=False)
                continue
            shown = ", ".join(f"{k}={v:.4g}" for k, v in list(result.metrics.items())[:8])
            size = f"{result.image_size[0]} x {result.image_size[1]}"
            console.print(
                f"[green]dry run OK[/green] {file}: one training step on {result.batch_size} random {size} image "
                f"pair(s) in {result.seconds:.1f} s: {shown}",
                markup=True,
                highlight=False,
            )
            for note in result.notes:
                console.print(f"  note: {note}", highlight=False)
    if failed:
        raise typer.Exit(code=2)


@recipe_app.command("show")
def show_cmd(
    file: Path = typer.Argument(..., help="Recipe file."),
    overrides: list[str] = typer.Option(None, "--set", "-s", help=SET_HELP),
    defaults: bool = typer.Option(False, "--defaults", help="Also print every key left at its default."),
) -> None:
    """Print the resolved recipe (base merged, overrides applied), after validating it."""
    from zoo.recipe import load_recipe

    recipe = load_recipe(file, overrides or [])
    typer.echo(_dump(recipe.to_dict(defaults=defaults)), nl=False)


def swap_cmd(
    file: Path = typer.Argument(..., help="Recipe file."),
    dotted: str = typer.Argument(
        ..., help="Dotted path of the component block, e.g. model.discriminators.global.network."
    ),
    new_name: str = typer.Argument(..., help="The registered component to put there (same kind)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the new recipe here (default: print it)."),
) -> None:
    """Replace one component of a recipe by another registered one of the same kind.

    The recipe's comments and layout are kept; with -o, a relative base: is rewritten so that the new recipe loads
    from where it is written. The result must pass the full recipe check (the same as `zoo recipe check`: keys and
    the contracts between components) before anything is written, and -o never replaces the recipe or its bases.
    """
    from rich.console import Console

    from zoo.recipe import swap_component

    text, kind, old, dropped = swap_component(file, dotted, new_name, output=output)
    err = Console(stderr=True, highlight=False)
    err.print(f"{dotted}: {kind} {old!r} -> {new_name!r}")
    if dropped:
        err.print(f"dropped parameters the new {kind} does not accept: {', '.join(sorted(dropped))}")
    if output is None:
        typer.echo(text, nl=False)
    else:
        from zoo.outputs import ensure_parent, writing

        with writing(ensure_parent(output)):  # a folder, a read-only folder or a full disk: a sentence
            output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(recipe_app, name="recipe")
    app.command("swap")(swap_cmd)
