"""Benchmark ``zoo studio``: the latency of one slider move, and of opening a 12 MP photo.

    .venv/bin/python tools/bench_studio.py [--quick] [--threads N]   (default: 2 threads, this machine's cores)

A slider move is what the server does per move: edit the preview (long side 512 px, here 512 x 384) with every
slider of the software at a random value, then encode it as JPEG (quality 90). Cases: the edit + encode in the
server's state (:meth:`zoo.studio.state.Studio.edit`, in a worker thread as the server runs it), the same through
the HTTP API (Starlette's in-process test client: request parsing, JSON, response), for ``lightroom_basic``
(12 sliders, fused path) and for the shipped ``rl_edit_sice`` model's ``editor_chain`` (10 sliders, operator
chain). Opening a photo: upload of a 4000 x 3000 JPEG, decode, the model's proposal, and the preview (not in
``--quick``). Medians over the moves.

``run(quick=False) -> list[dict]`` gives rows in ``tools/benchmark.py``'s format.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_THREADS = 2
TARGET_MS = "< 100"  # ten moves a second feels live


_EXPORT_SCRIPT = r"""
import json, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
from pathlib import Path
from zoo.studio.state import Studio, studio_model
data = Path({photo!r}).read_bytes()  # made by the parent: its arrays do not count here
studio = Studio(studio_model(None))
session = studio.new_session()
small = studio.add_photo(session.id, "warm.jpg", [Path({small!r}).read_bytes()])
studio.export(session.id, small.id, {{"exposure": 0.3, "clarity": 0.4, "dehaze": 0.2}})  # warm-up
def status(key):  # kB; VmHWM is the peak resident set size, reset by writing 5 to clear_refs
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
t0 = time.perf_counter()
photo = studio.add_photo(session.id, "big.jpg", [data])
t1 = time.perf_counter()
studio.export(session.id, photo.id, {{"exposure": 0.3, "clarity": 0.4, "dehaze": 0.2}})
t2 = time.perf_counter()
peak = status("VmHWM")
studio.close()
print(json.dumps({{"open": t1 - t0, "export": t2 - t1, "peak_delta_kb": peak - before}}))
"""


def _photo_bytes(h: int, w: int, fmt: str = "PNG") -> bytes:
    """A smooth photo-like image (gradients + texture) encoded as ``fmt``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    arr = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 23.0) * np.cos(yy / 17.0)], axis=-1) * 0.7
    arr += rng.normal(0, 0.02, arr.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(buf, fmt, quality=92)
    return buf.getvalue()


def _random_moves(software, n: int) -> list[dict[str, float]]:
    import torch

    g = torch.Generator().manual_seed(0)
    moves = []
    for _ in range(n):
        u = torch.rand(software.K, generator=g) * 1.6 - 0.8
        moves.append(
            {
                name: float(spec.from_unit(u[i : i + 1])[0])
                for i, (name, spec) in enumerate(zip(software.names, software.specs, strict=True))
            }
        )
    return moves


def _slider_rows(label: str, model, moves: int, threads: int) -> list[dict]:
    from starlette.testclient import TestClient

    from zoo.studio.app import create_app
    from zoo.studio.state import Studio, encode_jpeg

    studio = Studio(model)
    rows = []
    try:
        session = studio.new_session()
        photo = studio.add_photo(session.id, "bench.png", [_photo_bytes(768, 1024)])
        h, w = photo.preview.shape[-2:]
        plan = _random_moves(studio.model.software, moves)

        def moves_in_a_worker() -> tuple[list[float], list[float]]:  # the server runs each edit in a worker thread
            studio.edit(session.id, photo.id, plan[0])  # warm-up
            out, enc = [], []
            for values in plan:
                t0 = time.perf_counter()
                studio.edit(session.id, photo.id, values)
                t1 = time.perf_counter()
                encode_jpeg(photo.preview)
                out.append(t1 - t0)
                enc.append(time.perf_counter() - t1)
            return out, enc

        with ThreadPoolExecutor(1) as pool:
            times, enc = pool.submit(moves_in_a_worker).result()
        ms, enc_ms = statistics.median(times) * 1000, statistics.median(enc) * 1000
        rows.append(
            dict(
                benchmark="studio",
                case=f"slider move, {label}, {w}x{h} preview (edit + JPEG)",
                value=round(ms, 1),
                unit="ms",
                target=TARGET_MS,
                notes=f"median of {len(times)} random moves (min {min(times) * 1000:.1f}), in a worker thread as "
                f"the server runs them; JPEG encode {enc_ms:.1f} ms of it; {threads} torch thread(s)",
            )
        )
        with TestClient(create_app(studio, close_on_shutdown=False), base_url="http://127.0.0.1") as client:
            url = f"/api/sessions/{session.id}/photos/{photo.id}/edit"
            headers = {"X-Zoo-Studio": "1"}
            client.post(url, json={"params": plan[0]}, headers=headers)
            http = []
            for values in plan:
                t0 = time.perf_counter()
                res = client.post(url, json={"params": values}, headers=headers)
                http.append(time.perf_counter() - t0)
                assert res.status_code == 200, res.text
        rows.append(
            dict(
                benchmark="studio",
                case=f"slider move, {label}, through the HTTP API",
                value=round(statistics.median(http) * 1000, 1),
                unit="ms",
                target=TARGET_MS,
                notes="in-process ASGI test client: request, JSON, edit, JPEG, response; browser and network excluded",
            )
        )
    finally:
        studio.close()
    return rows


def run(quick: bool = False, threads: int | None = DEFAULT_THREADS) -> list[dict]:
    """Run the studio benchmarks; one dict per row (benchmark, case, value, unit, target, notes)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    from zoo.registry import create
    from zoo.studio.state import Studio, studio_model

    moves = 10 if quick else 40
    torch.manual_seed(0)
    rl = studio_model(create("generator", "rl_editor"), description="rl_editor (random weights)")
    rows = _slider_rows("lightroom_basic (12 sliders)", rl, moves, threads)
    try:
        from zoo.inference import load_model
        from zoo.pretrained import DEFAULT

        loaded = load_model(pretrained=DEFAULT, device="cpu")
        shipped = studio_model(loaded.generator, description=loaded.source, recipe=loaded.recipe)
        sw = shipped.software
        rows += _slider_rows(f"{sw.software_name} of {DEFAULT} ({sw.K} sliders)", shipped, moves, threads)[:1]
    except Exception as exc:  # no shipped model in this checkout
        rows.append(
            dict(benchmark="studio", case="slider move, shipped model", value=None, unit="ms", notes=f"skipped: {exc}")
        )
    if not quick:
        studio = Studio(rl)
        try:
            session = studio.new_session()
            data = _photo_bytes(3000, 4000, "JPEG")
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                studio.add_photo(session.id, "big.jpg", [data])
                times.append(time.perf_counter() - t0)
        finally:
            studio.close()
        rows.append(
            dict(
                benchmark="studio",
                case="open a 4000x3000 JPEG (store, decode, proposal, preview)",
                value=round(statistics.median(times), 2),
                unit="s",
                target="",
                notes=f"median of {len(times)}; rl_editor; {threads} thread(s)",
            )
        )
        rows += _export_rows(threads)
    return rows


def _export_rows(threads: int) -> list[dict]:
    """Opening and exporting a 12 MP photo in a fresh process: time, and the peak memory it needed."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        photo, small = Path(tmp) / "big.jpg", Path(tmp) / "small.jpg"
        photo.write_bytes(_photo_bytes(3000, 4000, "JPEG"))
        small.write_bytes(_photo_bytes(300, 400, "JPEG"))
        script = _EXPORT_SCRIPT.format(root=str(ROOT), threads=threads, photo=str(photo), small=str(small))
        res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return [
        dict(
            benchmark="studio",
            case="export a 4000x3000 JPEG (decode, 12-slider edit, JPEG encode, sidecars)",
            value=round(out["export"], 2),
            unit="s",
            target="",
            notes=f"lightroom_basic, no model; opening it took {out['open']:.2f} s; {threads} thread(s)",
        ),
        dict(
            benchmark="studio",
            case="open + export a 4000x3000 JPEG, peak memory",
            value=round(out["peak_delta_kb"] / 1024**2, 2),
            unit="GB",
            target="< 2",
            notes="peak RSS (VmHWM, reset before opening) minus RSS before, fresh process; one full-resolution "
            "photo in memory at a time",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer moves, no 12 MP photo")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help=f"torch threads (default {DEFAULT_THREADS})"
    )
    args = parser.parse_args()

    from tools.benchmark import add_ratios, load_average, machine_description, render

    before = load_average()
    rows = run(quick=args.quick, threads=args.threads)
    add_ratios(rows)
    command = "python tools/bench_studio.py" + (" --quick" if args.quick else "") + f" --threads {args.threads}"
    print(render(rows, machine_description(args.threads, (before, load_average())), command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
