"""Benchmark RL-controlled editing on this machine: agent updates per second and full-resolution inference.

    python tools/bench_rl.py [--quick] [--threads N]

Rows (also returned by :func:`run` for the benchmark harness):

- ``rl_update``: the ``rl`` trainer's own ``train_step`` (batch 20, 64 x 64 thumbnails, policy act + 12-slider
  edit + reward + 5 WGAN-GP critic steps + one A2C update), updates per second (median over repeats; the data
  loading is not included: the trainer caches thumbnails). Target: >= 10 / s on 2 CPU cores.
- ``rl_infer_12mp``: ``rl_editor`` in eval mode on one 4000 x 3000 photo (area thumbnail, policy argmax,
  12 edits at full resolution), seconds per image; also the thumbnail + policy part alone.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _recipe(batch: int, critic_steps: int, algorithm: str) -> Any:
    from zoo.recipe import recipe_from_dict

    return recipe_from_dict(
        {
            "name": "bench_rl",
            "data": {"name": "synthetic", "size": 4, "resize": 64},
            "model": {"generator": {"name": "rl_editor"}, "algorithm": {"name": algorithm}},
            "train": {"trainer": "rl", "batch_size": batch, "critic_steps": critic_steps, "device": "cpu"},
            "tracking": {"enabled": False},
        }
    )


def _smooth_images(n: int, h: int, w: int, seed: int = 0) -> Any:
    """Photo-like test images: upsampled low-resolution noise (smooth regions and edges), dark-ish."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, h // 16), max(2, w // 16), generator=g)
    return (F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False) * 0.6).clamp(0, 1)


def bench_updates(
    batch: int = 20, critic_steps: int = 5, algorithm: str = "a2c", repeats: int = 5, n: int = 10
) -> dict[str, Any]:
    """Median updates/s of the rl trainer's train_step over ``repeats`` runs of ``n`` updates (after warm-up)."""
    import torch

    from zoo.train.rl import RLTrainer

    torch.manual_seed(0)
    trainer = RLTrainer(_recipe(batch, critic_steps, algorithm), device="cpu", quiet=True)
    trainer.build()  # no dataset, no tracking: the step alone
    batch_data = {"source": _smooth_images(batch, 64, 64, 1), "target": _smooth_images(batch, 64, 64, 2) + 0.3}
    batch_data["target"] = batch_data["target"].clamp(0, 1)
    for _ in range(3):
        trainer.train_step(batch_data)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            trainer.train_step(batch_data)
        rates.append(n / (time.perf_counter() - t0))
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


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
    rows = [
        {
            "benchmark": "rl_update",
            "case": "a2c, batch 20, 64x64, 5 critic steps",
            "value": round(upd["median"], 2),
            "unit": "updates/s",
            "target": ">= 10",
            "notes": f"median (min {upd['min']:.1f}, max {upd['max']:.1f}), {threads} thread(s)",
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
                "notes": f"{threads} thread(s)",
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

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(quick=args.quick)
    print(f"# RL editing benchmark: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("| benchmark | case | value | unit | target | notes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['benchmark']} | {r['case']} | {r['value']} | {r['unit']} | {r['target']} | {r['notes']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
