"""Recipes: YAML files that put registered components together.

A recipe has the sections ``name, description, seed, base, data, model, train, tracking``::

    name: enlightengan
    base: other.yaml                 # optional: inherit, then override (dicts merge; lists and blocks replace)
    data: {name: image_folder, source: ..., target: ...}
    model: {generator: {name: enlightengan_unet}, ...}   # validated by the trainer's ModelSpec
    train: {trainer: gan, steps: 1000, ...}               # validated by the trainer's TrainSpec
    tracking: {enabled: true}

Loading never runs arbitrary code: YAML is read with the safe loader and a recipe can only name registered
components. Validation (pydantic) happens before anything heavy runs; every error names the file and the dotted
key, and unknown keys get a "Did you mean ...?".
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from zoo.errors import RecipeError, ZooError, short_repr, suggest
from zoo.registry import EntryInfo, entries, find_entry, get
from zoo.specs import CommonTrainSpec, Component, ComponentKind, StrictModel, TrackingSpec

__all__ = [
    "Component",
    "ComponentKind",
    "Recipe",
    "RecipeFile",
    "apply_overrides",
    "flatten",
    "get_path",
    "load_recipe",
    "merge",
    "recipe_from_dict",
    "resolve_data",
    "resolve_file",
    "set_path",
    "swap_component",
]

TOP_LEVEL_KEYS = ("name", "description", "seed", "base", "data", "model", "train", "tracking")
MAX_BASE_DEPTH = 16


# ----------------------------------------------------------------------------------------------- recipe


class RecipeFile(StrictModel):
    """The top level of a recipe file (sections validated further by the trainer)."""

    name: str
    description: str = ""
    seed: int = 0
    data: Component("dataset")
    model: dict[str, Any]
    train: dict[str, Any]
    tracking: TrackingSpec = TrackingSpec()


@dataclasses.dataclass
class Recipe:
    """A loaded, resolved and validated recipe."""

    name: str
    description: str
    seed: int
    data: dict[str, Any]
    model: BaseModel
    train: CommonTrainSpec
    tracking: TrackingSpec
    raw: dict[str, Any]
    source: Path | None = None
    trainer_cls: Any = None

    def where(self, dotted: str) -> str:
        return f"{self.source or '<recipe>'}: {dotted}"

    def blocks(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every top-level component block: ``(dotted path, kind, block)``, data first."""
        found = [("data", "dataset", self.data)]
        found.extend(_iter_blocks(self.model, "model"))
        return found

    def to_dict(self, *, defaults: bool = False) -> dict[str, Any]:
        """The resolved recipe; with ``defaults`` every section also lists the keys left at their defaults."""
        if not defaults:
            return copy.deepcopy(self.raw)
        out = {"name": self.name, "description": self.description, "seed": self.seed, "data": dict(self.data)}
        out["model"] = self.model.model_dump(mode="json")
        out["train"] = self.train.model_dump(mode="json")
        out["tracking"] = self.tracking.model_dump(mode="json")
        return out


def _iter_blocks(model: BaseModel, prefix: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for field_name, info in type(model).model_fields.items():
        value = getattr(model, field_name)
        path = f"{prefix}.{field_name}"
        kind = next((m.kind for m in info.metadata if isinstance(m, ComponentKind)), None)
        if kind is None:
            kind = _kind_in_annotation(info.annotation)
        if kind is not None and isinstance(value, Mapping) and "name" in value:
            yield path, kind, value
            continue
        yield from _iter_nested(value, path)


def _iter_nested(value: Any, path: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    if isinstance(value, BaseModel):
        yield from _iter_blocks(value, path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _iter_nested(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _iter_nested(item, f"{path}.{i}")


def _kind_in_annotation(annotation: Any) -> str | None:
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, ComponentKind):
            return meta.kind
    for arg in typing.get_args(annotation):  # Optional[Component[...]]
        if getattr(arg, "__metadata__", None):
            found = _kind_in_annotation(arg)
            if found:
                return found
    return None


# ----------------------------------------------------------------------------------------------- loading


MAX_YAML_BYTES = 1 << 20  # a recipe is a few KB; 1 MiB leaves room and bounds the parse
MAX_YAML_NODES = 20_000  # values after alias expansion (a real recipe has a few hundred)
MAX_YAML_DEPTH = 64  # nesting levels (a real recipe has fewer than 10)


def _bounded_loader(where: str):
    """A safe YAML loader that refuses deep nesting and alias expansion beyond the limits, while composing."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        _depth = 0
        _sizes: dict[int, int]

        def compose_node(self, parent: Any, index: Any) -> Any:
            if not hasattr(self, "_sizes"):
                self._sizes = {}
            self._depth += 1
            try:
                if self._depth > MAX_YAML_DEPTH:
                    mark = self.peek_event().start_mark
                    raise RecipeError(
                        f"{where}: the YAML nests deeper than {MAX_YAML_DEPTH} levels (line {mark.line + 1}); "
                        "a recipe is a few levels of sections and component blocks."
                    )
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            size = self._sizes.get(id(node))
            if size is None:  # an alias returns its anchor's node, already counted: its expanded size counts again
                children = node.value if isinstance(node.value, list) else []
                size = 1
                for child in children:
                    for item in child if isinstance(child, tuple) else (child,):
                        size += self._sizes.get(id(item), 1)
                self._sizes[id(node)] = size
            if size > MAX_YAML_NODES:
                mark = node.start_mark
                raise RecipeError(
                    f"{where}: the YAML expands to more than {MAX_YAML_NODES} values (near line {mark.line + 1}; "
                    "an alias counts as all the values it repeats); a recipe that large is refused."
                )
            return node

    return BoundedLoader


def parse_yaml_text(text: str | bytes, where: str) -> Any:
    """Parse YAML safely within bounds: size, nesting depth and alias expansion; a sentence on any error.

    Args:
        text: the document (bytes are decoded as UTF-8).
        where: what to name in messages (a file path, ``--set``, ...).

    Raises:
        RecipeError: too large, not UTF-8, too deep, expanding too much, or invalid YAML.

    Example:
        >>> parse_yaml_text("a: {b: 1}", "<test>")
        {'a': {'b': 1}}
    """
    import yaml

    if isinstance(text, bytes):
        if len(text) > MAX_YAML_BYTES:
            raise RecipeError(f"{where}: {len(text)} bytes is too large for a recipe (limit {MAX_YAML_BYTES}).")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecipeError(
                f"{where}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); save the "
                "recipe as UTF-8."
            ) from None
    if len(text) > MAX_YAML_BYTES:
        raise RecipeError(f"{where}: {len(text)} characters is too large for a recipe (limit {MAX_YAML_BYTES}).")
    loader = _bounded_loader(where)(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{where}: invalid YAML{at}: {short_repr(problem, 200).strip(chr(39))}.") from None
    except RecursionError:
        raise RecipeError(f"{where}: the YAML nests too deeply to read.") from None
    finally:
        loader.dispose()


def check_bounded(value: Any, where: str) -> None:
    """Refuse a recipe-like structure (from a checkpoint, say) that is too deep or expands too much.

    Shared references (YAML aliases, pickled shared objects) count once per use, as printing or validating
    them would expand them. The walk stops at the limits, so it is fast whatever the input.

    Raises:
        RecipeError: naming ``where`` and the limit.
    """
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_YAML_NODES:
            raise RecipeError(
                f"{where}: the recipe expands to more than {MAX_YAML_NODES} values (repeated references); refused."
            )
        if depth > MAX_YAML_DEPTH:
            raise RecipeError(f"{where}: the recipe nests deeper than {MAX_YAML_DEPTH} levels; refused.")
        if isinstance(item, Mapping):
            for k, v in item.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(item, (list, tuple, set)):
            stack.extend((v, depth + 1) for v in item)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one recipe file with the safe loader, within bounds (:func:`parse_yaml_text`); a sentence on any error."""
    path = Path(path)
    if path.is_dir():
        raise RecipeError(f"Recipe {path} is a folder; give a .yaml file.")
    if not path.is_file():
        hint = ""
        recipes = Path(__file__).resolve().parent.parent / "recipes"
        if recipes.is_dir():
            names = sorted(p.name for p in recipes.glob("*.yaml"))
            hint = f"{suggest(path.name, names)} Recipes shipped in {recipes}: {', '.join(names) or 'none'}."
        raise RecipeError(f"Recipe file {path} does not exist.{hint}")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise RecipeError(f"{path}: {size} bytes is too large for a recipe (limit {MAX_YAML_BYTES} bytes).")
        with path.open("rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise RecipeError(f"Recipe {path} cannot be read: {exc.strerror or exc}.") from None
    data = parse_yaml_text(raw, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: a recipe is a mapping of sections ({', '.join(TOP_LEVEL_KEYS)}), got {type(data).__name__}."
        )
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into ``base``.

    Dicts merge key by key; lists, scalars and component blocks (dicts with a ``name`` key) replace whole, so
    a recipe that names another component never inherits the old component's parameters.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping) and "name" not in value:
            out[key] = merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_file(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a recipe and merge its ``base:`` chain (paths relative to the file that names them)."""
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise RecipeError(f"Recipe base chain loops: {cycle}.")
    if len(_chain) > MAX_BASE_DEPTH:
        raise RecipeError(f"{path}: base chain is deeper than {MAX_BASE_DEPTH} recipes.")
    return resolve_data(read_yaml(path), path, _chain)


def resolve_data(data: dict[str, Any], path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Merge the ``base:`` chain of recipe data read from ``path``."""
    path = Path(path).resolve()
    data = dict(data)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise RecipeError(f"{path}: base: names one recipe file (a string), got {short_repr(base)}.")
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.is_file():
        raise RecipeError(f"{path}: base: {short_repr(base)} does not exist (looked for {base_path}).")
    return merge(resolve_file(base_path, (*_chain, path)), data)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` (value read as a YAML scalar or list) into the key path and the value."""
    if "=" not in item:
        raise RecipeError(f"Override {short_repr(item)} is not of the form dotted.key=value (e.g. train.steps=200).")
    key, _, text = item.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise RecipeError(f"Override {item!r}: the key {key!r} is not a dotted path like train.steps.")
    try:
        value = parse_yaml_text(text, f"--set {key}") if text.strip() else ""
    except RecipeError as exc:
        if "invalid YAML" not in str(exc):
            raise  # too large, too deep or expanding too much: refused, not taken as text
        value = text
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to a resolved recipe dict (returns a new dict)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(parts[: i + 1])
                raise RecipeError(f"Override {item!r}: {where} is {short_repr(nxt)}, not a section, so it has no keys.")
            node = nxt
        node[parts[-1]] = value
    return out


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Load, resolve (``base:`` and ``--set`` overrides) and validate a recipe file."""
    raw = apply_overrides(resolve_file(path), overrides)
    return recipe_from_dict(raw, source=Path(path))


def recipe_from_dict(raw: Mapping[str, Any], source: str | Path | None = None) -> Recipe:
    """Validate an already-resolved recipe mapping."""
    src = str(source) if source is not None else "<recipe>"
    raw = dict(raw)
    raw.pop("base", None)
    _check_keys(raw, RecipeFile, (), src)
    top = _validated(RecipeFile, raw, (), src)
    trainer_name = top.train.get("trainer")
    if not trainer_name:
        raise RecipeError(f"{src}: train.trainer is missing; name a registered trainer.{_trainers_hint()}")
    try:
        trainer_cls = get("trainer", str(trainer_name))
    except ZooError as exc:
        raise RecipeError(f"{src}: train.trainer: {exc}") from None
    model_spec = getattr(trainer_cls, "ModelSpec", None)
    train_spec = getattr(trainer_cls, "TrainSpec", CommonTrainSpec)
    if model_spec is None:
        raise RecipeError(
            f"{src}: trainer {trainer_name!r} declares no ModelSpec, so its model section cannot be checked."
        )
    upgrade = getattr(trainer_cls, "upgrade_message", None)  # a recipe in a layout this trainer no longer reads
    message = upgrade(src, top.model, top.train) if upgrade is not None else None
    if message:
        raise RecipeError(message)
    _check_keys(top.model, model_spec, ("model",), src)
    _check_keys(top.train, train_spec, ("train",), src)
    model = _validated(model_spec, top.model, ("model",), src)
    train = _validated(train_spec, top.train, ("train",), src)
    recipe = Recipe(
        name=top.name,
        description=top.description,
        seed=top.seed,
        data=top.data,
        model=model,
        train=train,
        tracking=top.tracking,
        raw=copy.deepcopy(dict(raw)),
        source=Path(source) if source is not None else None,
        trainer_cls=trainer_cls,
    )
    check = getattr(trainer_cls, "check_recipe", None)
    if check is not None:  # cross-section checks (e.g. the policy's K against the software's)
        try:
            check(recipe)
        except ZooError as exc:
            text = str(exc)
            raise RecipeError(text if text.startswith(src) else f"{src}: {text}") from None
    return recipe


def _trainers_hint() -> str:
    names = [e.name for e in entries("trainer")]
    return f" Available trainers: {', '.join(names)}." if names else ""


# ----------------------------------------------------------------------------------------------- validation


def _model_class(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _check_keys(value: Any, spec: Any, loc: tuple[str | int, ...], src: str) -> None:
    """Reject unknown keys anywhere in ``value`` against the pydantic model/annotation ``spec``, with suggestions."""
    model = _model_class(spec)
    if model is not None:
        if not isinstance(value, Mapping):
            return  # pydantic reports the type error
        fields = model.model_fields
        allowed = set(fields) | {f.alias for f in fields.values() if f.alias}
        if model.model_config.get("extra") == "forbid":
            for key in value:
                if key not in allowed:
                    dotted = ".".join(str(p) for p in (*loc, key))
                    raise RecipeError(
                        f"{src}: {dotted}: unknown key.{suggest(str(key), allowed)} "
                        f"Accepted keys here: {', '.join(sorted(allowed))}."
                    )
        for name, info in fields.items():
            if name in value:
                _check_keys(value[name], info.annotation, (*loc, name), src)
        return
    origin = typing.get_origin(spec)
    args = typing.get_args(spec)
    if origin is Annotated:
        _check_keys(value, args[0], loc, src)
    elif origin in (dict, Mapping) and len(args) == 2 and isinstance(value, Mapping):
        for key, item in value.items():
            _check_keys(item, args[1], (*loc, key), src)
    elif origin in (list, tuple, Sequence) and args and isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_keys(item, args[0], (*loc, i), src)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            if _model_class(arg) is not None and isinstance(value, Mapping):
                _check_keys(value, arg, loc, src)


def _validated(model: type[BaseModel], value: Any, loc: tuple[str, ...], src: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise RecipeError(_format_validation(exc, loc, src)) from None


def _format_validation(exc: ValidationError, loc: tuple[str, ...], src: str) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in (*loc, *err["loc"]) if not str(p).startswith("function-"))
        msg = err.get("msg", "invalid")
        msg = msg.removeprefix("Value error, ")
        got = err.get("input")
        quiet = err.get("type") in ("missing", "value_error") or isinstance(got, Mapping)
        shown = "" if quiet else f" (got {short_repr(got)})"
        lines.append(f"{src}: {path or '<top>'}: {msg}{shown}.".replace("..", "."))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- helpers


def get_path(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in nested mappings (a RecipeError naming the missing key otherwise)."""
    node: Any = data
    walked = []
    for part in dotted.split("."):
        walked.append(part)
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, Mapping) or part not in node:
            keys = sorted(node) if isinstance(node, Mapping) else []
            raise RecipeError(
                f"{'.'.join(walked)} is not in the recipe.{suggest(part, keys)}"
                + (f" Keys at this level: {', '.join(map(str, keys))}." if keys else "")
            )
        node = node[part]
    return node


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating sections as needed."""
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys (lists kept as values), e.g. for MLflow params."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def swap_component(
    path: str | Path, dotted: str, new_name: str, output: str | Path | None = None
) -> tuple[str, str, str, list[str]]:
    """Replace the component block at ``dotted`` in a recipe file by ``new_name`` (same kind).

    Parameters the new component accepts are kept, the others dropped. The file is edited as a round trip
    (ruamel.yaml), so its comments, key order and layout stay as they were around the swapped block. A recipe
    named after its file (``name: rl_edit`` in ``rl_edit.yaml``) written to another file takes that file's name
    (its runs then get their own folder and MLflow experiment), and its description says what was swapped. When the
    result goes to ``output``, a relative ``base:`` is rewritten relative to the output's folder, so the new recipe
    loads from where it is written. The result passes the full recipe check (keys, and the trainer's
    ``check_recipe``: the contracts between the components) as read from its new location, before anything is
    written.

    Args:
        path: the recipe file.
        dotted: the block's dotted key, e.g. ``model.discriminators.global.objective``.
        new_name: a registered component of the same kind.
        output: where the caller will write the result (``None``: printed, checked as if beside ``path``).

    Returns:
        The new recipe text, the kind, the old component's name, and the dropped parameter names.

    Raises:
        RecipeError: not a component block, a name of another kind, or a result that fails the recipe check.
        DataError: ``output`` would replace the input recipe or one of its ``base:`` recipes.

    Example (from the repository's root):
        >>> text, kind, old, dropped = swap_component("recipes/rl_edit.yaml", "model.algorithm", "ppo")
        >>> kind, old, "algorithm: {name: ppo, lr: 1.0e-4" in text, "# alpha = 100" in text
        ('algorithm', 'a2c', True, True)
    """
    path = Path(path)
    target = Path(output) if output is not None else path
    if output is not None:  # an output never replaces an input: the recipe or any recipe of its base chain
        from zoo.outputs import refuse_overwriting_inputs

        refuse_overwriting_inputs([target], _base_chain(path), what="swapped recipe")
    resolved = resolve_file(path)
    block = get_path(resolved, dotted)
    if isinstance(block, str):
        block = {"name": block}
    if not isinstance(block, Mapping) or "name" not in block:
        raise RecipeError(
            f"{path}: {dotted} is not a component block ({{name: ..., <params>}}), it is {short_repr(block)}."
        )
    old_name = str(block["name"])
    kind = _kind_at(resolved, path, dotted, old_name)
    new_entry = _lookup_for_swap(kind, new_name, path, dotted)
    accepted = {p.name for p in new_entry.params}
    kept = {k: v for k, v in block.items() if k != "name" and k in accepted}
    dropped = [k for k in block if k != "name" and k not in accepted]
    read_yaml(path)  # bounds and a sentence for a broken file, before the round-trip parser sees it
    text = _swapped_text(path, dotted, new_name, kept, accepted, target)
    written = parse_yaml_text(text, str(target))
    base = written.get("base")
    if isinstance(base, str) and not Path(base).is_absolute():
        # the output's folder may not exist yet, so the OS cannot walk "..": join the paths lexically
        written["base"] = os.path.normpath(target.parent.resolve() / base)
    recipe_from_dict(resolve_data(written, target), source=target)  # the result, read from where it goes
    return text, kind, old_name, dropped


def _is_block(path: Path, dotted: str) -> bool:
    try:
        block = get_path(resolve_file(path), dotted)
    except RecipeError:
        return False
    return isinstance(block, Mapping) and "name" in block


def _base_chain(path: Path) -> list[Path]:
    """``path`` and every recipe its ``base:`` chain names (the inputs a swap reads)."""
    chain = [Path(path)]
    current = Path(path)
    for _ in range(MAX_BASE_DEPTH):
        try:
            base = read_yaml(current).get("base")
        except RecipeError:
            break
        if not isinstance(base, str):
            break
        current = Path(base) if Path(base).is_absolute() else current.parent / base
        if any(current.resolve() == p.resolve() for p in chain):
            break
        chain.append(current)
    return chain


def _round_trip_yaml() -> Any:
    from ruamel.yaml import YAML

    yaml_rt = YAML(typ="rt")
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 4096  # never re-wrap a long line of the user's file
    yaml_rt.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml_rt


def _swapped_text(
    path: Path, dotted: str, new_name: str, kept: Mapping[str, Any], accepted: set[str], target: Path
) -> str:
    """The recipe file's text with the block at ``dotted`` swapped (comments kept) and ``base:`` made relative to
    ``target``'s folder."""
    import io

    from ruamel.yaml.comments import CommentedMap

    yaml_rt = _round_trip_yaml()
    doc = yaml_rt.load(path.read_text(encoding="utf-8"))
    if doc is None:
        doc = CommentedMap()
    parts = dotted.split(".")
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        child = node.get(part) if isinstance(node, Mapping) else None
        if child is None:  # the block comes from the base recipe: add an override section here
            child = node[part] = CommentedMap()
        elif not isinstance(child, (Mapping, list)):
            where = ".".join(parts[: i + 1])
            raise RecipeError(f"{path}: {where} is {short_repr(child)}, not a section, so it cannot hold {dotted}.")
        node = child
    last = parts[-1]
    current = node[int(last)] if isinstance(node, list) else node.get(last)
    if isinstance(current, CommentedMap) and "name" in current:  # edit in place: comments and layout stay
        current["name"] = new_name
        for key in [k for k in current if k != "name" and k not in accepted]:
            del current[key]
    else:  # a bare name, a partial override of the base's block, or nothing yet: write the whole block
        fresh = CommentedMap([("name", new_name), *kept.items()])
        fresh.fa.set_flow_style()
        value: Any = new_name if isinstance(current, str) and not kept else fresh
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    if target.resolve() != path.resolve() and doc.get("name") == path.stem and target.stem != path.stem:
        # a recipe named after its file is renamed after the new file: otherwise both would share one run folder
        # (<out_dir>/<name>) and one MLflow experiment
        doc["name"] = target.stem
        old_name = str(get_path(resolve_file(path), dotted).get("name")) if _is_block(path, dotted) else "?"
        if isinstance(doc.get("description"), str):
            doc["description"] = f"{doc['description']} [zoo swap: {dotted} {old_name} -> {new_name}]"
    base = doc.get("base")
    if isinstance(base, str) and not Path(base).is_absolute() and target.resolve() != path.resolve():
        base_file = (path.parent / base).resolve()
        try:
            doc["base"] = Path(os.path.relpath(base_file, target.parent.resolve())).as_posix()
        except ValueError:  # another drive (Windows): no relative path exists
            doc["base"] = str(base_file)
    buf = io.StringIO()
    yaml_rt.dump(doc, buf)
    return buf.getvalue()


def _kind_at(resolved: dict[str, Any], path: Path, dotted: str, old_name: str) -> str:
    try:
        for block_path, kind, _ in recipe_from_dict(resolved, source=path).blocks():
            if block_path == dotted:
                return kind
    except RecipeError:
        pass  # an invalid recipe can still be repaired by a swap: fall back to the index
    try:
        return find_entry(old_name).kind
    except ZooError as exc:
        raise RecipeError(f"{path}: {dotted}: cannot tell the kind of {old_name!r}: {exc}") from None


def _lookup_for_swap(kind: str, name: str, path: Path, dotted: str) -> EntryInfo:
    try:
        return find_entry(name, kind)
    except ZooError as exc:
        raise RecipeError(f"{path}: {dotted} holds a {kind}, so the replacement must be a {kind}: {exc}") from None
