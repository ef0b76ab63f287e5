"""Weights-only model files: a generator block and its state dict, nothing that runs code when loaded.

One small format serves the shipped pretrained models (``zoo/pretrained/<name>/generator.pt``), the ``model``
artifact of MLflow runs and the versions of the MLflow Model Registry::

    {"format": "enhance-zoo-weights", "version": 1,
     "generator_block": {"name": "rl_editor", ...},   # the recipe's model.generator, resolved
     "state_dict": {...},                              # tensors only
     "meta": {...}}                                    # plain values: recipe name, step, commit, ...

It is read with ``torch.load(weights_only=True)`` (tensors and plain containers only, never a pickle of a class),
and the network is rebuilt from the block with ``zoo.registry.create``, as :mod:`zoo.checkpoint_io` does for
training checkpoints. A training checkpoint (optimisers, RNG states, the discriminators) is 5 to 100 times
larger; :func:`weights_from_checkpoint` keeps only what inference needs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import DataError, load_failure

__all__ = [
    "WEIGHTS_FILE",
    "WEIGHTS_FORMAT",
    "build_from_weights",
    "load_weights_file",
    "read_weights",
    "save_weights",
    "weights_from_checkpoint",
]

WEIGHTS_FORMAT = "enhance-zoo-weights"
WEIGHTS_FILE = "generator.pt"


def _plain(value: Any) -> Any:
    """The value as plain containers of str / int / float / bool / None (what weights_only=True may read)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _portable_block(block: Mapping[str, Any]) -> dict[str, Any]:
    # a `weights:` path in the block points at a file of the training machine; the state dict supersedes it
    return {k: _plain(v) for k, v in block.items() if k != "weights"}


def save_weights(
    path: str | os.PathLike[str],
    generator: nn.Module,
    block: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a generator as a weights-only file (atomically: a temporary file renamed into place).

    Args:
        path: the file to write (folders are created).
        generator: the network whose ``state_dict`` is saved (moved to the CPU).
        block: its generator block (``{"name": ..., <params>}``), which rebuilds the network.
        meta: plain values recorded beside (recipe name, training step, commit, ...).

    Returns:
        The path written.

    Example:
        >>> from zoo.generators.baselines import GammaToMean
        >>> p = save_weights(tempfile.mkdtemp() + "/g.pt", GammaToMean(), {"name": "gamma"})
        >>> read_weights(p)["generator_block"]
        {'name': 'gamma'}
    """
    if "name" not in block:
        raise DataError("save_weights: the generator block has no 'name' (the registered generator to rebuild).")
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    payload = {
        "format": WEIGHTS_FORMAT,
        "version": 1,
        "generator_block": _portable_block(block),
        "state_dict": state,
        "meta": _plain(dict(meta or {})),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a model file is as readable as any other output
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_weights(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a weights-only file with ``torch.load(weights_only=True)`` and check its layout.

    Raises:
        DataError: the file is missing, not readable safely, or not an enhance-zoo weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Weights file {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"{path} cannot be read as a weights-only file: {load_failure(exc)}.") from None
    if not isinstance(state, dict) or state.get("format") != WEIGHTS_FORMAT:
        found = sorted(map(str, state))[:8] if isinstance(state, dict) else type(state).__name__
        raise DataError(
            f"{path} is not an enhance-zoo weights file (format {WEIGHTS_FORMAT!r} with generator_block and "
            f"state_dict; found {found})."
        )
    block = state.get("generator_block")
    if not isinstance(block, Mapping) or "name" not in block or not isinstance(state.get("state_dict"), Mapping):
        raise DataError(f"{path}: the weights file has no generator_block with a name, or no state_dict.")
    return state


def build_from_weights(state: Mapping[str, Any], where: str = "weights file") -> nn.Module:
    """Rebuild the generator of a weights payload (as :func:`read_weights` returns it), in eval mode on the CPU."""
    from zoo.registry import create

    gen = create("generator", _portable_block(state["generator_block"]), where=f"{where}: generator_block")
    try:
        gen.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise DataError(f"{where}: the weights do not fit the network its generator block builds: {exc}") from None
    return gen.eval()


def load_weights_file(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """Load a weights-only file: ``(generator in eval mode on the CPU, its meta dict)``.

    Example:
        >>> from zoo.generators.baselines import CLAHE
        >>> p = save_weights(tempfile.mkdtemp() + "/g.pt", CLAHE(), {"name": "clahe"}, {"note": "x"})
        >>> gen, meta = load_weights_file(p)
        >>> type(gen).__name__, meta
        ('CLAHE', {'note': 'x'})
    """
    state = read_weights(path)
    return build_from_weights(state, where=str(path)), dict(state.get("meta") or {})


def weights_from_checkpoint(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], meta: Mapping[str, Any] | None = None
) -> Path:
    """Write the generator of a training checkpoint (file or run folder) as a weights-only file.

    The checkpoint's recipe name, step and MLflow run id go into ``meta`` (with ``meta`` given here on top).
    """
    from zoo.checkpoint_io import checkpoint_in, generator_block, generator_state, load_checkpoint

    path = checkpoint_in(Path(checkpoint)) or Path(checkpoint)
    state = load_checkpoint(path)
    block = _portable_block(generator_block(state, where=f"Checkpoint {path}"))
    recipe = state.get("recipe") if isinstance(state.get("recipe"), Mapping) else {}
    info = {
        "recipe": recipe.get("name"),
        "step": state.get("step"),
        "mlflow_run_id": state.get("mlflow_run_id"),
        **dict(meta or {}),
    }
    gen = build_from_weights({"generator_block": block, "state_dict": generator_state(state)}, where=str(path))
    return save_weights(out, gen, block, {k: v for k, v in info.items() if v is not None})
