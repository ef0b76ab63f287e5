"""``zoo recipe check --dry-run``: one complete training step of a recipe on random tensors of its sizes.

The contract checks (:func:`zoo.train.adversarial.check_adversarial_recipe`) refuse impossible combinations from
the components' declarations alone. The dry run goes one step further: it builds the trainer exactly as
``zoo train`` does (networks, objectives, optimisers, content losses) and runs one ``train_step`` on random images
of the size the recipe's data would yield, on the CPU, reading no data and writing nothing. Content losses that
need pretrained weights get random ones (the step checks the wiring, not the quality), and the report says so.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Any

import torch

from zoo.contracts import ContentLossContract, contract_of
from zoo.errors import TrainingError, ZooError

__all__ = ["DryRunResult", "RandomPairs", "dry_run"]

DEFAULT_SIZE = (128, 128)  # when the data's images vary in size (whole images, no crop or resize)


@dataclasses.dataclass
class DryRunResult:
    """What one dry-run step did."""

    metrics: dict[str, float]
    image_size: tuple[int, int]
    batch_size: int
    seconds: float
    notes: list[str]


class RandomPairs(torch.utils.data.Dataset):
    """``n`` random source/target pairs of one size (smooth noise in [0, 1], a darker source)."""

    def __init__(self, n: int, size: tuple[int, int], seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        h, w = size
        low = torch.rand(2, n, 3, max(2, h // 8), max(2, w // 8), generator=g)
        images = torch.nn.functional.interpolate(low.flatten(0, 1), size=(h, w), mode="bilinear", align_corners=False)
        images = images.reshape(2, n, 3, h, w).clamp(0, 1)
        self.source, self.target = images[0] * 0.4, images[1]

    def __len__(self) -> int:
        return self.source.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"source": self.source[index], "target": self.target[index]}

    def batch(self) -> dict[str, torch.Tensor]:
        return {"source": self.source.clone(), "target": self.target.clone()}


def _without_pretrained(raw: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    for name, spec in (raw.get("model", {}).get("losses") or {}).items():
        block = spec.get("loss") if isinstance(spec, dict) else None
        if not isinstance(block, dict):
            continue
        try:
            contract = contract_of("loss", block)
        except ZooError:
            continue
        if isinstance(contract, ContentLossContract) and contract.needs_pretrained:
            block["pretrained"] = False
            notes.append(f"model.losses.{name}.loss: random weights stand in for the pretrained {block['name']}")
    return raw


def dry_run(recipe: Any, *, batch_size: int = 2, seed: int | None = None) -> DryRunResult:
    """Build the recipe's trainer on the CPU and run one training step on random images of the recipe's size.

    Args:
        recipe: a validated ``zoo.recipe.Recipe`` (its contracts already checked).
        batch_size: images per side in the step (at most the recipe's ``train.batch_size``; 2 keeps BatchNorm
            in training mode meaningful and the step fast).
        seed: RNG seed (default: the recipe's).

    Returns:
        The step's metrics, the image size and batch used, the time it took, and notes.

    Raises:
        TrainingError: the step failed or produced a non-finite metric (a sentence naming the recipe).
    """
    from zoo.recipe import recipe_from_dict
    from zoo.train import checkpoint as ckpt

    notes: list[str] = []
    raw = _without_pretrained(recipe.to_dict(), notes)
    raw.setdefault("tracking", {})["enabled"] = False
    raw["train"]["device"] = "cpu"
    dry = recipe_from_dict(raw, source=recipe.source)
    try:
        size = contract_of("dataset", dry.data).image_size
    except ZooError:
        size = None
    if size is None:
        size = DEFAULT_SIZE
        notes.append(f"the data's images vary in size: the step used {size[0]} x {size[1]}")
    n = max(1, min(int(batch_size), int(dry.train.batch_size)))
    ckpt.seed_everything(dry.seed if seed is None else seed)
    trainer = dry.trainer_cls(dry, device="cpu", quiet=True)
    trainer.dataset = RandomPairs(max(n, 2), size, seed=dry.seed)
    src = recipe.source or "<recipe>"
    t0 = time.perf_counter()
    try:
        trainer.build()
        batch = {k: v[:n] for k, v in trainer.dataset.batch().items()}
        raw_metrics = trainer.train_step(batch)
    except ZooError as exc:
        raise TrainingError(f"{src}: the dry-run step failed: {exc}") from None
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            f"{src}: one training step on random {size[0]} x {size[1]} images failed inside the components "
            f"({', '.join(_names(dry))}): {type(exc).__name__}: {first[:300]}"
        ) from None
    finally:
        trainer._release()
    seconds = time.perf_counter() - t0
    metrics = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in raw_metrics.items()}
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
        raise TrainingError(f"{src}: the dry-run step gave non-finite values: {', '.join(bad)}.")
    return DryRunResult(metrics, size, n, seconds, notes)


def _names(recipe: Any) -> list[str]:
    return [block["name"] for _, _, block in recipe.blocks() if isinstance(block, dict) and "name" in block][1:]
