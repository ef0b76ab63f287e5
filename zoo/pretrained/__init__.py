"""Pretrained models shipped inside the package: ``zoo/pretrained/<name>/`` with weights and a manifest.

Each folder holds ``generator.pt`` (a weights-only file, :mod:`zoo.weights`: generator block + state dict, read
with ``torch.load(weights_only=True)``), ``manifest.yaml`` (what it is and how it was made: recipe, command,
commit, training time, data, scores) and ``recipe.yaml`` (the resolved recipe it was trained with).

Every shipped model was trained by the project's own recipes on ``lowlight/SICE_dark`` (source) and
``normal/BSDS500`` + ``normal/SunHays80`` + ``normal/Urban100`` (target), never on the evaluation photos (DICM,
CBSD68, McMaster), so the scores in its manifest are on photos it has not seen.

``zoo enhance photos/ -o out/`` with no model option uses :data:`DEFAULT`; ``--pretrained NAME`` picks another;
``zoo list pretrained`` lists them from ``registry.yaml`` (its ``pretrained`` section, generated from the
manifests by ``tools/gen_registry.py``). Listing reads YAML only; loading imports torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from zoo.errors import DataError, UnknownComponentError, available, suggest

__all__ = ["DEFAULT", "PRETRAINED_DIR", "Pretrained", "find", "index_entries", "list_pretrained", "load_pretrained"]

PRETRAINED_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.yaml"
WEIGHTS = "generator.pt"
RECIPE = "recipe.yaml"
MAX_MANIFEST_BYTES = 1 << 20
DEFAULT = "edit_regressor_local_sice"
"""The model ``zoo enhance`` uses when no model is named."""


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """One shipped model: its folder and manifest."""

    name: str
    folder: Path
    manifest: dict[str, Any]

    @property
    def weights(self) -> Path:
        return self.folder / str(self.manifest.get("weights", {}).get("file", WEIGHTS))

    @property
    def summary(self) -> str:
        return str(self.manifest.get("summary", ""))

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    def resolved_recipe(self) -> dict[str, Any] | None:
        """The resolved recipe it was trained with (``recipe.yaml`` beside the manifest), or None."""
        path = self.folder / RECIPE
        return _read_manifest(path) if path.is_file() else None


def _read_manifest(path: Path) -> dict[str, Any]:
    import yaml

    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise DataError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes; a manifest is a short YAML file.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} must be a YAML mapping (name, summary, recipe, scores, ...).")
    return data


def list_pretrained(root: Path = PRETRAINED_DIR) -> list[Pretrained]:
    """The shipped models (folders of ``root`` with a manifest), default first, then by name.

    Example:
        >>> [p.name for p in list_pretrained()][:1] == [DEFAULT]
        True
    """
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file()):
        found.append(Pretrained(folder.name, folder, _read_manifest(folder / MANIFEST)))
    return sorted(found, key=lambda p: (not p.is_default, p.name))


def find(name: str, root: Path = PRETRAINED_DIR) -> Pretrained:
    """The shipped model called ``name``.

    Raises:
        UnknownComponentError: no such model (with the nearest names and the list).
    """
    models = {p.name: p for p in list_pretrained(root)}
    if name not in models:
        raise UnknownComponentError(
            f"There is no pretrained model {name!r}.{suggest(name, models)} {available(models)} "
            "('zoo list pretrained' lists them with their scores.)"
        )
    return models[name]


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file (the manifest records its weights' digest)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_pretrained(name: str = DEFAULT, root: Path = PRETRAINED_DIR) -> tuple[Any, Pretrained]:
    """Build a shipped model: ``(generator in eval mode on the CPU, its Pretrained record)``.

    The weights file's SHA-256 must match the manifest's (a damaged or swapped file is refused).

    Example:
        >>> gen, info = load_pretrained()
        >>> info.name == DEFAULT, gen.training
        (True, False)
    """
    from zoo.weights import load_weights_file

    info = find(name, root)
    if not info.weights.is_file():
        raise DataError(f"Pretrained model {name!r}: its weights file {info.weights} is missing from the install.")
    expected = info.manifest.get("weights", {}).get("sha256")
    if expected and sha256(info.weights) != expected:
        raise DataError(
            f"Pretrained model {name!r}: {info.weights} does not match the SHA-256 in its manifest "
            "(the file is damaged or was replaced); reinstall enhance-zoo."
        )
    gen, _ = load_weights_file(info.weights)
    return gen, info


def index_entries(root: Path = PRETRAINED_DIR) -> list[dict[str, Any]]:
    """The ``pretrained`` section of ``registry.yaml``: one short record per shipped model."""
    out = []
    for p in list_pretrained(root):
        m = p.manifest
        out.append(
            {
                "name": p.name,
                "default": p.is_default,
                "summary": p.summary,
                "recipe": m.get("recipe"),
                "generator": m.get("generator"),
                "data": m.get("data"),
                "scores": m.get("scores"),
                "size_bytes": m.get("weights", {}).get("bytes"),
            }
        )
    return out
