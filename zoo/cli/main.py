"""Entry point of the ``zoo`` command: discovers the command modules of ``zoo.cli`` and runs typer."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

import zoo.cli
from zoo.errors import ZooError

app = typer.Typer(
    name="zoo",
    help="enhance-zoo: unpaired image enhancement from registered, swappable components.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(zoo.cli.__path__), key=lambda i: i.name):
        if info.name in {"main", "__main__"} or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"zoo.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        import zoo

        typer.echo(f"enhance-zoo {zoo.__version__}")
        raise typer.Exit()


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user mistakes (ZooError) print one sentence and exit with status 2."""
    try:
        app(args=argv)  # standalone: typer prints usage errors itself and exits
    except ZooError as exc:
        _print_error(str(exc))
        sys.exit(2)


def _print_error(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/bold red] {message}", markup=True)


if __name__ == "__main__":
    main()
