"""Generator inference speed on a 600 x 400 photo: eager, channels_last + BatchNorm folded, onnxruntime.

    python tools/bench_generator.py [--generator enlightengan_unet] [--threads 2] [--rounds 7] [--markdown]

All three run the same weights (random, with non-trivial BatchNorm statistics) in the same process, interleaved
round by round, so machine noise hits them alike; the table reports medians and the ratio to onnxruntime.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="enlightengan_unet")
    parser.add_argument("--height", type=int, default=400)
    parser.add_argument("--width", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--markdown", action="store_true", help="print only the markdown table")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from zoo.export import export_onnx
    from zoo.layers.fuse import fuse_for_inference
    from zoo.registry import create

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = create("generator", args.generator)
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    gen.eval()
    fused = fuse_for_inference(gen)
    x = torch.rand(1, 3, args.height, args.width)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.onnx"
        report = export_onnx(gen, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        x_np = x.numpy()
        runs = {
            "eager (NCHW, BatchNorm)": lambda: gen(x),
            "zoo: channels_last + BN folded": lambda: fused(x_cl),
            "onnxruntime (CPU EP)": lambda: session.run(None, {"input": x_np}),
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        with torch.inference_mode():
            diff = float((fused(x_cl)["image"] - gen(x)["image"]).abs().max())
            for fn in runs.values():  # warm-up
                fn()
            for _ in range(args.rounds):
                for name, fn in runs.items():
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    ort_t = med["onnxruntime (CPU EP)"]
    # per-round ratio: robust to load changing between rounds
    zoo_t, ort_ts = times["zoo: channels_last + BN folded"], times["onnxruntime (CPU EP)"]
    ratios = [z / o for z, o in zip(zoo_t, ort_ts, strict=True)]
    lines = [
        f"Generator `{args.generator}`, 1 x 3 x {args.height} x {args.width}, {args.threads} threads, "
        f"median of {args.rounds} interleaved rounds ({platform.processor() or platform.machine()}, torch "
        f"{torch.__version__}, onnxruntime {ort.__version__})",
        "",
        "| path | median s | vs onnxruntime |",
        "|---|---:|---:|",
    ]
    for name, t in med.items():
        lines.append(f"| {name} | {t:.3f} | {t / ort_t:.2f}x |")
    lines.append("")
    lines.append(f"median per-round ratio zoo/onnxruntime: {statistics.median(ratios):.2f}; "
                 f"fused vs eager max |diff| {diff:.1e}; ONNX vs PyTorch max |diff| {report.max_abs_diff:.1e}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
