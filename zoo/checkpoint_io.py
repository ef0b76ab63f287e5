"""Reading zoo checkpoints: safe load, the generator inside, and :func:`load_generator` for inference.

Inference needs no trainer: a checkpoint records its generator block (``generator_block``: the recipe's
``model.generator``, resolved), so the network is rebuilt with ``zoo.registry.create`` alone, and a checkpoint
written by a plugin trainer loads without that plugin. Files are read with ``torch.load(weights_only=True)``:
only tensors and plain containers, never code. Writing (atomic save, RNG states, resume) is training's business
and lives in :mod:`zoo.train.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import DataError, load_failure

FORMAT = "enhance-zoo-checkpoint"
LAST = "last.pt"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a zoo checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        DataError: the file is missing, unreadable, or not a zoo checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"Checkpoint {path} is a folder with no checkpoints/{LAST} inside; give a checkpoint file.")
    if not path.is_file():
        raise DataError(f"Checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataError(f"Checkpoint {path} cannot be read: {load_failure(exc)}.") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        keys = sorted(map(str, state))[:8] if isinstance(state, dict) else type(state).__name__
        raise DataError(
            f"{path} is not an enhance-zoo checkpoint (found {keys}). Foreign weight files (e.g. the official "
            "EnlightenGAN .pth) are loaded through the generator's load_weights / weights parameter instead."
        )
    from zoo.errors import RecipeError
    from zoo.recipe import check_bounded

    for key in ("recipe", "generator_block"):  # bounded before anything validates, prints or logs them
        if key in state:
            try:
                check_bounded(state[key], f"Checkpoint {path}: {key}")
            except RecipeError as exc:
                raise DataError(str(exc)) from None
    return state


def checkpoint_in(path: Path) -> Path | None:
    """The checkpoint a path names: the file itself, or ``last.pt`` inside a run or checkpoints folder."""
    if path.is_file():
        return path
    for candidate in (path / "checkpoints" / LAST, path / LAST):
        if candidate.is_file():
            return candidate
    return None


def generator_state(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The generator's state dict inside a checkpoint."""
    if "generator_from" in state:
        return state["modules"][state["generator_from"]]
    if "generator" in state:
        return state["generator"]
    raise DataError("This checkpoint holds no generator weights (neither 'generator_from' nor 'generator').")


def generator_block(state: Mapping[str, Any], where: str = "checkpoint") -> dict[str, Any]:
    """The generator block a checkpoint was trained with (``generator_block``, else its recipe's model.generator)."""
    block = state.get("generator_block")
    if block is None:
        recipe = state.get("recipe")
        model = recipe.get("model") if isinstance(recipe, Mapping) else None
        block = model.get("generator") if isinstance(model, Mapping) else None
    if isinstance(block, str):
        block = {"name": block}
    if not isinstance(block, Mapping) or "name" not in block:
        raise DataError(
            f"{where} does not say which generator it holds (no generator_block, and no recipe with a "
            "model.generator block), so its weights cannot be rebuilt into a network."
        )
    return dict(block)


def load_generator(
    checkpoint: str | Path | None = None,
    run_id: str | None = None,
    device: str | torch.device = "cpu",
    tracking_uri: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained generator from a checkpoint or an MLflow run, ready for inference.

    The checkpoint's generator block makes the network (no trainer class is needed); the weights are then
    loaded with ``weights_only=True``.

    Args:
        checkpoint: a checkpoint file or a run folder (``<run dir>`` or ``<run dir>/checkpoints``).
        run_id: an MLflow run id (the run's local checkpoint, else its ``checkpoints/last.pt`` artifact).
        device: where to put the generator (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto``).
        tracking_uri: the MLflow store to look ``run_id`` up in (default: ``MLFLOW_TRACKING_URI`` or
            ``sqlite:///mlflow.db``).

    Returns:
        ``(generator in eval mode on device, the checkpoint's resolved recipe dict, or {} when it has none)``.
    """
    if (checkpoint is None) == (run_id is None):
        raise DataError("load_generator needs exactly one of checkpoint= (a file or run folder) or run_id=.")
    if run_id is not None:
        from zoo.tracking import checkpoint_for_run

        path = checkpoint_for_run(run_id, tracking_uri)
    else:
        path = checkpoint_in(Path(checkpoint)) or Path(checkpoint)
    state = load_checkpoint(path)
    from zoo.registry import create

    block = generator_block(state, where=f"Checkpoint {path}")
    gen = create("generator", block, where=f"{path}: generator_block")
    try:
        gen.load_state_dict(generator_state(state))
    except RuntimeError as exc:
        raise DataError(
            f"Checkpoint {path}: the generator weights do not fit the network its generator block builds: {exc}"
        ) from None
    from zoo.devices import resolve_device

    dev = device if isinstance(device, torch.device) else resolve_device(str(device))
    recipe = state.get("recipe")
    return gen.to(dev).eval(), dict(recipe) if isinstance(recipe, Mapping) else {}
