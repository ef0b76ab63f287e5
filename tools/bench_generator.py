"""Generator inference speed on a 600 x 400 photo: eager, the zoo path (what ``zoo enhance`` runs), onnxruntime.

    python tools/bench_generator.py [--generator enlightengan_unet] [--threads 2] [--rounds 7] [--markdown]

The three paths run the same weights (random, with non-trivial BatchNorm statistics) in the same process with
the same thread count, interleaved round by round, so machine noise hits them alike. The zoo path is
``zoo.inference.prepare_for_inference`` (BatchNorm folded, shifts moved into the next conv, channels_last,
prepacked oneDNN weights) fed a channels_last input, exactly as ``zoo enhance`` does. Reported: medians per
path, the median of the per-round ratios zoo / onnxruntime (robust to load changing between rounds), the
load average before and after (``/proc/loadavg``), and the largest output difference to eager.
``run(quick)`` returns the same numbers as rows for ``tools/benchmark.py``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EAGER, ZOO, ORT = "eager (NCHW, BatchNorm)", "zoo: prepare_for_inference (zoo enhance)", "onnxruntime (CPU EP)"
TARGET_RATIO = 1.10


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def measure(
    generator: str = "enlightengan_unet", height: int = 400, width: int = 600, threads: int = 2, rounds: int = 7
) -> dict[str, Any]:
    """Time eager, the zoo path and onnxruntime, interleaved; returns times, ratios, diffs and load."""
    import onnxruntime as ort
    import torch

    from zoo.export import export_onnx
    from zoo.inference import prepare_for_inference
    from zoo.registry import create

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gen = create("generator", generator)
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    gen.eval()
    zoo_model = prepare_for_inference(gen)
    x = torch.rand(1, 3, height, width)
    load_before = _loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.onnx"
        report = export_onnx(gen, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        x_np = x.numpy()
        runs = {
            EAGER: lambda: gen(x),
            # the conversion to channels_last is part of the zoo path (run_generator does it per image)
            ZOO: lambda: zoo_model(x.contiguous(memory_format=torch.channels_last)),
            ORT: lambda: session.run(None, {"input": x_np}),
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        with torch.inference_mode():
            ref = gen(x)
            out = runs[ZOO]()
            diff = max(float((out[k] - ref[k]).abs().max()) for k in ("image", "latent"))
            for fn in runs.values():  # warm-up
                fn()
            for _ in range(rounds):
                for name, fn in runs.items():
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
    ratios = [z / o for z, o in zip(times[ZOO], times[ORT], strict=True)]
    return {
        "generator": generator,
        "size": (height, width),
        "threads": threads,
        "rounds": rounds,
        "median": {k: statistics.median(v) for k, v in times.items()},
        "times": times,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "eager_ratio": statistics.median(e / o for e, o in zip(times[EAGER], times[ORT], strict=True)),
        "diff": diff,
        "onnx_diff": report.max_abs_diff,
        "load": (load_before, _loadavg()),
        "versions": (torch.__version__, ort.__version__),
    }


def run(quick: bool = False) -> list[dict]:
    """Rows for ``tools/benchmark.py``: one per path (median s/image) and the zoo / onnxruntime ratio."""
    r = measure(rounds=3 if quick else 7)
    notes = f"{r['rounds']} interleaved rounds, {r['threads']} threads, load {r['load'][0]} -> {r['load'][1]}"
    case = f"{r['generator']} {r['size'][1]}x{r['size'][0]}"
    rows = [
        {
            "benchmark": "generator",
            "case": f"{case}: {name}",
            "value": round(t, 3),
            "unit": "s/image",
            "target": "",
            "notes": notes,
        }
        for name, t in r["median"].items()
    ]
    rows.append(
        {
            "benchmark": "generator",
            "case": f"{case}: zoo / onnxruntime (median per-round ratio)",
            "value": round(r["ratio"], 3),
            "unit": "x",
            "target": f"<= {TARGET_RATIO:.2f}",
            "notes": f"per-round ratios {' '.join(f'{x:.2f}' for x in r['ratios'])}; zoo vs eager max "
            f"abs diff {r['diff']:.1e}",
        }
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="enlightengan_unet")
    parser.add_argument("--height", type=int, default=400)
    parser.add_argument("--width", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--markdown", action="store_true", help="print only the markdown table")
    args = parser.parse_args()
    r = measure(args.generator, args.height, args.width, args.threads, args.rounds)
    ort_t = r["median"][ORT]
    lines = [
        "| path | median s | vs onnxruntime (median of medians) |",
        "|---|---:|---:|",
        *(f"| {name} | {t:.3f} | {t / ort_t:.2f}x |" for name, t in r["median"].items()),
        "",
        f"median per-round ratio zoo / onnxruntime: {r['ratio']:.3f} (target <= {TARGET_RATIO:.2f}); "
        f"eager / onnxruntime: {r['eager_ratio']:.3f}; load average {r['load'][0]} -> {r['load'][1]}",
        f"zoo vs eager max |diff| {r['diff']:.1e}; ONNX vs PyTorch max |diff| {r['onnx_diff']:.1e}",
    ]
    if not args.markdown:
        h, w = r["size"]
        lines.insert(
            0,
            f"Generator `{r['generator']}`, 1 x 3 x {h} x {w}, {r['threads']} threads, {r['rounds']} "
            f"interleaved rounds ({platform.processor() or platform.machine()}, torch {r['versions'][0]}, "
            f"onnxruntime {r['versions'][1]})\n",
        )
        lines.append(
            "per-round s: "
            + "; ".join(f"{name.split(' ')[0]} " + " ".join(f"{t:.2f}" for t in ts) for name, ts in r["times"].items())
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
