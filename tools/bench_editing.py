"""Benchmark the 12-slider ``lightroom_basic`` software on this machine's CPU.

    .venv/bin/python tools/bench_editing.py [--quick] [--threads N]   (default: 2 threads, this machine's cores)

Cases (issue 3): a batch of 64 thumbnails at 64 x 64 (images/s, target >= 2000), one 512 x 384 image (ms,
target <= 35, i.e. 20x faster than the reference's 0.69 s), one 4000 x 3000 photo (s, target < 2) and its peak
memory (target < 2 GB): the peak resident set size of a fresh subprocess during the edit minus its RSS just before
(input image already allocated), from ``resource.getrusage(RUSAGE_SELF).ru_maxrss``. Medians over several runs,
random slider values (all non-zero, so no operator is skipped), ``torch.inference_mode``.

``run(quick=False) -> list[dict]`` is the entry point of the lead's benchmark harness.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_BIG_SCRIPT = r"""
import json, resource, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
from zoo.registry import create
torch.manual_seed(0)
sw = create("software", "lightroom_basic")
x = torch.rand(1, 3, 3000, 4000)
p = torch.rand(1, 12) * 1.6 - 0.8
p[p.abs() < 0.1] = 0.3
with torch.inference_mode():
    sw.apply(x[:, :, :300, :400], p)  # warm-up at small size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range({repeats}):
        t = time.perf_counter(); sw.apply(x, p); times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"times": times, "peak_delta_kb": peak - before}}))
"""


def _median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


DEFAULT_THREADS = 2  # this machine's cores; the targets are stated for it
MEMORY_METHOD = (
    "peak RSS delta of a fresh subprocess during the edit: resource.getrusage(RUSAGE_SELF).ru_maxrss after the "
    "timed edits minus before them (input already allocated)"
)


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


def run(quick: bool = False, threads: int | None = DEFAULT_THREADS) -> list[dict]:
    """Run the editing benchmarks; returns one dict per row (benchmark, case, value, unit, target, ok, notes)."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from zoo.registry import create

    torch.manual_seed(0)
    sw = create("software", "lightroom_basic")
    rows: list[dict] = []

    def params(n: int) -> torch.Tensor:
        p = torch.rand(n, 12) * 1.6 - 0.8
        p[p.abs() < 0.1] = 0.3
        return p

    with torch.inference_mode():
        x = torch.rand(64, 3, 64, 64)
        p = params(64)
        t = _median_time(lambda: sw.apply(x, p), repeats=3 if quick else 9)
        tc = _median_time(lambda: sw.apply_chain(x, p), repeats=3)
        rows.append(
            dict(
                benchmark="editing",
                case="lightroom_basic, batch 64 @ 64x64",
                value=round(64 / t, 1),
                unit="images/s",
                target=">= 2000",
                ok=64 / t >= 2000,
                notes=f"{t * 1000:.1f} ms per batch; operator chain {64 / tc:.0f} images/s",
            )
        )
        x = torch.rand(1, 3, 384, 512)
        p = params(1)
        t = _median_time(lambda: sw.apply(x, p), repeats=3 if quick else 9)
        tc = _median_time(lambda: sw.apply_chain(x, p), repeats=3)
        rows.append(
            dict(
                benchmark="editing",
                case="lightroom_basic, one 512x384 image",
                value=round(t * 1000, 1),
                unit="ms",
                target="<= 35",
                ok=t * 1000 <= 35,
                notes=f"{0.69 / t:.1f}x the reference's 0.69 s; operator chain {tc * 1000:.0f} ms",
            )
        )
    script = _BIG_SCRIPT.format(root=str(ROOT), repeats=1 if quick else 3, threads=torch.get_num_threads())
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    big = json.loads(res.stdout.strip().splitlines()[-1])
    t = statistics.median(big["times"])
    mem_gb = big["peak_delta_kb"] / 1024**2
    rows.append(
        dict(
            benchmark="editing",
            case="lightroom_basic, one 4000x3000 photo",
            value=round(t, 2),
            unit="s",
            target="< 2",
            ok=t < 2,
            notes=f"median of {len(big['times'])}",
        )
    )
    rows.append(
        dict(
            benchmark="editing",
            case="lightroom_basic, 4000x3000 peak memory",
            value=round(mem_gb, 2),
            unit="GB",
            target="< 2",
            ok=mem_gb < 2,
            notes="peak RSS delta during the edit (ru_maxrss, fresh process)",
        )
    )
    return rows


def markdown(rows: list[dict]) -> str:
    import torch

    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), load average {load_average()} "
        "(1 min, at the end of the run)",
        f"Memory: {MEMORY_METHOD}.",
        "",
        "| case | value | target | met |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['value']} {r['unit']} ({r['notes']}) | {r['target']} {r['unit']} | "
            f"{'yes' if r['ok'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"torch.set_num_threads (default {DEFAULT_THREADS}, this machine's cores)",
    )
    args = parser.parse_args()

    print(f"load average before: {load_average()}", file=sys.stderr)
    rows = run(quick=args.quick, threads=args.threads)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
