"""``zoo list`` and ``zoo show``: browse the registry (listing reads registry.yaml and never imports torch)."""

from __future__ import annotations

import json

import typer

from zoo.errors import UnknownComponentError, available, suggest
from zoo.registry import KINDS, entries, find_entry


def _console():
    from rich.console import Console

    return Console(soft_wrap=False)


def list_cmd(
    filters: list[str] = typer.Argument(
        None, help="A kind (generator, discriminator, ...), a glob on the name ('*gan*'), or both."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, names or json."),
) -> None:
    """List registered components: kind, name, summary, paper (``zoo list pretrained``: the shipped models)."""
    if filters and filters[0] in ("pretrained", "pretrained_models"):
        return _list_pretrained(filters[1:], fmt)
    kind, pattern = _split_filters(filters or [])
    found = entries(kind, pattern)
    if fmt == "names":
        for e in found:
            typer.echo(f"{e.kind}/{e.name}")
        return
    if fmt == "json":
        typer.echo(json.dumps([e.as_dict() for e in found], indent=2))
        return
    if fmt != "table":
        raise UnknownComponentError(
            f"Unknown --format {fmt!r}.{suggest(fmt, ['table', 'names', 'json'])} Use table, names or json."
        )
    from rich.table import Table

    console = _console()
    kind_w = max((len(e.kind) for e in found), default=4)
    name_w = max((len(e.name) + (len(e.origin) + 3 if e.origin != "zoo" else 0) for e in found), default=4)
    paper_w = min(28, max((len(e.paper) for e in found), default=5))
    summary_w = max(20, console.width - kind_w - name_w - paper_w - 13)
    table = Table(title=f"{len(found)} component(s)", title_justify="left")
    table.add_column("kind", min_width=kind_w)
    table.add_column("name", min_width=name_w)
    table.add_column("summary", min_width=min(summary_w, 20), max_width=summary_w)
    table.add_column("paper", max_width=paper_w)
    for e in found:
        name = e.name if e.origin == "zoo" else f"{e.name} ({e.origin})"
        table.add_row(e.kind, name, _clip(e.summary, summary_w), _clip(e.paper, paper_w))
    console.print(table)
    if not found:
        console.print("No component matches." + (f" Kinds: {', '.join(KINDS)}." if kind is None else ""))


def _list_pretrained(filters: list[str], fmt: str) -> None:
    """The shipped pretrained models, from registry.yaml's ``pretrained`` section (no torch import)."""
    import fnmatch
    from pathlib import Path

    from zoo.registry import pretrained_index

    pattern = filters[0] if filters else "*"
    pattern = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    found = [p for p in pretrained_index() if fnmatch.fnmatchcase(str(p.get("name")), pattern)]
    if fmt == "names":
        for p in found:
            typer.echo(f"pretrained/{p['name']}")
        return
    if fmt == "json":
        typer.echo(json.dumps(found, indent=2))
        return
    if fmt != "table":
        raise UnknownComponentError(
            f"Unknown --format {fmt!r}.{suggest(fmt, ['table', 'names', 'json'])} Use table, names or json."
        )
    from rich.table import Table

    title = f"{len(found)} pretrained model(s); scores: mean over the 64 DICM photos (zoo enhance --pretrained NAME)"
    table = Table(title=title, title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("recipe", "NIQE↓", "bright", "colour", "MB"):
        table.add_column(col, overflow="fold", justify="left" if col == "recipe" else "right")
    for p in found:
        scores = p.get("scores") if isinstance(p.get("scores"), dict) else {}
        dicm = scores.get("DICM") if isinstance(scores.get("DICM"), dict) else {}
        recipe = p.get("recipe")
        size = p.get("size_bytes")
        table.add_row(
            p["name"] + (" (default)" if p.get("default") else ""),
            Path(str(recipe.get("file") or recipe.get("name") or "-")).stem
            if isinstance(recipe, dict)
            else str(recipe),
            *[
                f"{dicm[k]:.3f}" if isinstance(dicm.get(k), (int, float)) else "-"
                for k in ("niqe", "mean_brightness", "colorfulness")
            ],
            f"{size / 2**20:.2f}" if isinstance(size, (int, float)) else "-",
        )
    console = _console()
    console.print(table)
    for p in found:
        console.print(f"{p['name']}: {p.get('summary', '')}", soft_wrap=True)
    if not found:
        console.print("No pretrained model matches.")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _split_filters(filters: list[str]) -> tuple[str | None, str | None]:
    if len(filters) > 2:
        raise UnknownComponentError(
            "zoo list takes at most a kind and a name pattern, e.g. zoo list generator '*gan*'."
        )
    kinds = [_as_kind(f) for f in filters]
    if len(filters) == 2 and not any(kinds):
        bad = next((f for f in filters if not any(c in f for c in "*?[")), filters[0])
        raise UnknownComponentError(f"{bad!r} is not a component kind.{suggest(bad, KINDS)} {available(KINDS)}")
    kind = next((k for k in kinds if k), None)
    rest = [f for f, k in zip(filters, kinds, strict=True) if not k]
    pattern = None
    if rest:
        item = rest[0]
        pattern = item if any(c in item for c in "*?[") else f"*{item}*"
    return kind, pattern


def _as_kind(item: str) -> str | None:
    if item in KINDS:
        return item
    if item.endswith("s") and item[:-1] in KINDS:  # 'generators' reads naturally
        return item[:-1]
    return None


def show_cmd(
    name: str = typer.Argument(..., help="A registered component name."),
    kind: str = typer.Option(None, "--kind", "-k", help="Disambiguate a name used by several kinds."),
) -> None:
    """Show a component: parameters (name, type, default), docstring, paper, source file and line."""
    import inspect

    from rich.table import Table

    from zoo.registry import get, source_location

    entry = find_entry(name, kind)
    obj = get(entry.kind, entry.name)  # imports only the module that holds it
    console = _console()
    console.print(f"[bold]{entry.kind}/{entry.name}[/bold]  {entry.summary}")
    console.print(f"paper:  {entry.paper or '-'}")
    console.print(f"tags:   {', '.join(entry.tags) or '-'}")
    console.print(f"target: {entry.target}")
    console.print(f"source: {source_location(entry.kind, entry.name)}")
    table = Table(title="parameters", title_justify="left")
    for col in ("name", "type", "default"):
        table.add_column(col, overflow="fold")
    for p in entry.params:
        table.add_row(p.name, p.type, "(required)" if p.required else repr(p.default))
    console.print(table)
    doc = inspect.getdoc(obj) or ""
    if doc:
        console.print(doc, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("list")(list_cmd)
    app.command("show")(show_cmd)
