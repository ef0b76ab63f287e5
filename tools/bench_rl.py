"""Benchmark RL-controlled editing on this machine: agent updates per second and full-resolution inference.

    python tools/bench_rl.py [--quick] [--threads N]

Rows (also returned by :func:`run` for the benchmark harness, ``tools/benchmark.py``, which judges the targets):

- ``rl_update``: the ``rl`` trainer's own ``train_step`` with the paper's settings (``recipes/rl_edit.yaml``:
  batch 20, 64 x 64 thumbnails, policy act + 12-slider edit + reward + 5 WGAN-GP critic steps + one A2C update),
  updates per second (median over repeats; the data loading is not included: the trainer caches thumbnails).
  Target: >= 10 / s on 2 CPU cores. The notes give the floating-point work of one update (counted by
  ``torch.utils.flop_counter``) and, in a full run, the split between one critic step and the rest (timed with
  ``train.d_steps`` 5 and 0).
- ``rl_infer``: ``rl_editor`` in eval mode on one 4000 x 3000 photo (area thumbnail, policy argmax,
  12 edits at full resolution), seconds per image; also the thumbnail + policy part alone.

``tools/gpu_check.py`` calls :func:`bench_updates`, :func:`bench_parts` and :func:`update_flops` with
``device="cuda"``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


PAPER_RECIPE = ROOT / "recipes" / "rl_edit.yaml"


def paper_recipe(
    batch: int = 20, critic_steps: int = 5, algorithm: str | None = None, device: str = "cpu", path: Path = PAPER_RECIPE
) -> Any:
    """The paper's recipe (``recipes/rl_edit.yaml``) with the batch, critic steps, algorithm and device set.

    Args:
        batch: photos per update (20 in the paper).
        critic_steps: critic updates per agent update (5 in the paper).
        algorithm: another registered algorithm with its defaults (``ppo``, ``reinforce``); None keeps the recipe's.
        device: ``cpu`` or ``cuda``.
        path: the recipe file.
    """
    from zoo.recipe import load_recipe, resolve_file

    train = resolve_file(path).get("train") or {}
    key = "critic_steps" if "critic_steps" in train else "d_steps"  # the old and the new layout's name
    overrides = [f"train.batch_size={batch}", f"train.{key}={critic_steps}", f"train.device={device}"]
    overrides += ["tracking.enabled=false"]
    if algorithm is not None:
        overrides.append(f"model.algorithm={{name: {algorithm}}}")
    return load_recipe(path, overrides)


def _trainer(recipe: Any, device: str) -> Any:
    """The recipe's trainer, built (networks and optimisers) without a dataset or tracking: the step alone."""
    trainer = recipe.trainer_cls(recipe, device=device, quiet=True)
    trainer.build()
    return trainer


def _batch(batch: int, device: str) -> dict[str, Any]:
    source = _smooth_images(batch, 64, 64, 1)
    target = (_smooth_images(batch, 64, 64, 2) + 0.3).clamp(0, 1)
    return {"source": source.to(device), "target": target.to(device)}


def _sync(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _smooth_images(n: int, h: int, w: int, seed: int = 0) -> Any:
    """Photo-like test images: upsampled low-resolution noise (smooth regions and edges), dark-ish."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, h // 16), max(2, w // 16), generator=g)
    return (F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False) * 0.6).clamp(0, 1)


def bench_updates(
    batch: int = 20,
    critic_steps: int = 5,
    algorithm: str | None = None,
    repeats: int = 5,
    n: int = 10,
    device: str = "cpu",
) -> dict[str, Any]:
    """Median updates/s of the rl trainer's train_step over ``repeats`` runs of ``n`` updates (after warm-up).

    Returns:
        ``{"median", "min", "max"}`` updates per second, and ``"peak_gb"``: the peak CUDA memory allocated during
        the timed updates (None on the CPU).
    """
    import torch

    torch.manual_seed(0)
    trainer = _trainer(paper_recipe(batch, critic_steps, algorithm, device), device)
    data = _batch(batch, device)
    for _ in range(3):
        trainer.train_step(data)
    _sync(device)
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            trainer.train_step(data)
        _sync(device)
        rates.append(n / (time.perf_counter() - t0))
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "peak_gb": peak}


def bench_parts(batch: int = 20, critic_steps: int = 5, n: int = 5, device: str = "cpu") -> dict[str, float]:
    """Where an update's time goes: seconds per critic step, and the rest (act, edit, reward, policy update).

    Times the same step with ``critic_steps`` and with 0 critic steps (``train.d_steps``); the difference divided
    by ``critic_steps`` is one critic step (forward + backward on real and edited thumbnails, gradient penalty,
    Adam).
    """
    times = {}
    for k in (critic_steps, 0):
        trainer = _trainer(paper_recipe(batch, k, None, device), device)
        data = _batch(batch, device)
        for _ in range(2):
            trainer.train_step(data)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            trainer.train_step(data)
        _sync(device)
        times[k] = (time.perf_counter() - t0) / n
    per_critic = max(times[critic_steps] - times[0], 0.0) / max(critic_steps, 1)
    return {"update_s": times[critic_steps], "critic_step_s": per_critic, "rest_s": times[0]}


def update_flops(batch: int = 20, critic_steps: int = 5, device: str = "cpu") -> float | None:
    """Floating-point operations of one update in GFLOP (convolutions and matmuls, torch's flop formulas), or None.

    Counted with a dispatch mode over ``torch.utils.flop_counter``'s formulas: ``FlopCounterMode`` itself tracks
    modules with autograd hooks, which ``autograd.grad`` (the gradient penalty's double backward) does not support.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class _Count(TorchDispatchMode):
        flops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.flops += formula(*args, **kwargs, out_val=out)
            return out

    trainer = _trainer(paper_recipe(batch, critic_steps, None, device), device)
    data = _batch(batch, device)
    trainer.train_step(data)
    counter = _Count()
    try:
        with counter:
            trainer.train_step(data)
    except Exception:  # an op the counter cannot follow: the row goes without the count rather than fail
        return None
    return counter.flops / 1e9


def bench_inference(height: int = 3000, width: int = 4000, repeats: int = 3) -> dict[str, Any]:
    """Median seconds for rl_editor (eval) on one photo, and for its thumbnail + policy part."""
    import torch

    from zoo.registry import create

    editor = create("generator", "rl_editor").eval()
    image = _smooth_images(1, height, width, 3)
    times, decide = [], []
    with torch.inference_mode():
        editor(image)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = editor(image)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            editor.decide(image)
            decide.append(time.perf_counter() - t0)
    assert out["image"].shape == image.shape
    return {"median": statistics.median(times), "decide": statistics.median(decide)}


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Run the RL benchmarks; one dict per row (benchmark, case, value, unit, target, notes)."""
    import torch

    threads = torch.get_num_threads()
    upd = bench_updates(repeats=2 if quick else 5, n=5 if quick else 10)
    gflop = update_flops()
    notes = f"median (min {upd['min']:.2f}, max {upd['max']:.2f}), {threads} thread(s)"
    if gflop is not None:
        notes += f"; {gflop:.1f} GFLOP per update ({gflop * upd['median']:.0f} GFLOP/s)"
    if not quick:
        parts = bench_parts()
        notes += (
            f"; one critic step {parts['critic_step_s'] * 1000:.0f} ms, act + edit + reward + policy update "
            f"{parts['rest_s'] * 1000:.0f} ms"
        )
    rows = [
        {
            "benchmark": "rl_update",
            "case": "a2c (rl_edit.yaml), batch 20, 64x64, 5 critic steps",
            "value": round(upd["median"], 2),
            "unit": "updates/s",
            "target": ">= 10",
            "notes": notes,
        }
    ]
    if not quick:
        ppo = bench_updates(algorithm="ppo", repeats=3)
        rows.append(
            {
                "benchmark": "rl_update",
                "case": "ppo (4 epochs), batch 20, 64x64, 5 critic steps",
                "value": round(ppo["median"], 2),
                "unit": "updates/s",
                "target": "",
                "notes": f"median (min {ppo['min']:.2f}, max {ppo['max']:.2f}), {threads} thread(s)",
            }
        )
    h, w = (1500, 2000) if quick else (3000, 4000)
    inf = bench_inference(h, w, repeats=1 if quick else 3)
    rows.append(
        {
            "benchmark": "rl_infer",
            "case": f"rl_editor eval, {w}x{h} ({h * w / 1e6:.0f} MP)",
            "value": round(inf["median"], 3),
            "unit": "s/image",
            "target": "",
            "notes": f"thumbnail + policy alone: {inf['decide'] * 1000:.0f} ms; {threads} thread(s)",
        }
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a 3 MP image")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    import torch

    from tools.benchmark import add_ratios, load_average, machine_description, render

    if args.threads:
        torch.set_num_threads(args.threads)
    before = load_average()
    rows = run(quick=args.quick)
    add_ratios(rows)
    command = "python tools/bench_rl.py" + (" --quick" if args.quick else "")
    command += f" --threads {args.threads}" if args.threads else ""
    print(render(rows, machine_description(args.threads, (before, load_average())), command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
