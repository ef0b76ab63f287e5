"""Checkpoints: atomic save, safe load, RNG states, resume lookup, and :func:`load_generator` for inference.

A checkpoint is one ``torch.save`` file (``<run dir>/checkpoints/last.pt``) holding a dict::

    format: "enhance-zoo-checkpoint", version: 1, zoo_version, trainer, step, data_position, world_size,
    modules: {name: state_dict}, optimizers: {name: state_dict}, schedulers: {name: state_dict},
    extra: trainer.extra_state(), rng: [per-rank RNG states], mlflow_run_id, tracking_uri,
    recipe: the resolved recipe dict,
    generator_from: name of the module that is the generator   (or generator: its state_dict)

It is written to a temporary file in the same folder, flushed to disk, then renamed over the old one, so a
process killed at any moment leaves either the previous checkpoint or the new one, never a torn file. It is read
with ``torch.load(weights_only=True)``: only tensors and plain containers, no code.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.checkpoint_io import FORMAT, LAST, checkpoint_in, load_checkpoint
from zoo.errors import TrainingError

__all__ = [
    "FORMAT",
    "LAST",
    "check_compatible",
    "checkpoint_in",
    "load_checkpoint",
    "resolve_resume",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
]


# ----------------------------------------------------------------------------------------------- RNG


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    seed = int(seed) % (2**32)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global RNG states of this process, in a form ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(
        (npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])[: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)


# ----------------------------------------------------------------------------------------------- save / load


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    with _suppress():  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)


def resolve_resume(resume: str | Path, tracker: Any) -> Path:
    """Find the checkpoint that ``--resume`` names: a file, a run folder, or an MLflow run id.

    Args:
        resume: what the user passed.
        tracker: the run's :class:`zoo.train.tracking.Tracker` (to look a run id up in its store).
    """
    path = Path(str(resume)).expanduser()
    if path.exists():
        found = checkpoint_in(path)
        if found is None:
            raise TrainingError(f"--resume {resume}: no checkpoint there (looked for {path}/checkpoints/{LAST}).")
        return found
    text = str(resume).strip()
    if text and all(c in "0123456789abcdef" for c in text.lower()) and len(text) >= 8:
        return tracker.checkpoint_for_run(text)
    raise TrainingError(
        f"--resume {resume}: neither an existing checkpoint file or run folder, nor an MLflow run id "
        "(32 hexadecimal characters). 'zoo runs' lists the runs of the configured store."
    )


def check_compatible(state: Mapping[str, Any], recipe: Any, path: Path) -> None:
    """Refuse to resume a checkpoint into a recipe with another trainer or another model section."""
    saved = state.get("recipe")
    missing = [k for k in ("recipe", "trainer", "step", "modules") if k not in state]
    if missing or not isinstance(saved, Mapping):
        raise TrainingError(
            f"Checkpoint {path} cannot be resumed: it lacks {', '.join(missing or ['a recipe mapping'])} (it was not "
            "written by zoo train, or was edited). Its generator can still be used with zoo enhance --checkpoint."
        )
    if state.get("trainer") != recipe.train.trainer:
        raise TrainingError(
            f"Checkpoint {path} was written by trainer {state.get('trainer')!r}; the recipe uses "
            f"{recipe.train.trainer!r}. Resume with the recipe the run started from."
        )
    from zoo.recipe import flatten

    old, new = flatten(saved.get("model") or {}), flatten(recipe.raw.get("model") or {})
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        shown = ", ".join(f"model.{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:5])
        raise TrainingError(
            f"Checkpoint {path} was trained with another model section ({shown}); the weights would not fit. "
            "Resume with the recipe the run started from (train.* keys such as steps may change)."
        )
