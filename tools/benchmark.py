"""Run every benchmark of the project on this machine and write one markdown table with the machine described.

    python tools/benchmark.py [--quick] [--only editing,generator,rl,niqe,studio] [--threads N] [-o docs/benchmarks.md]

Each area keeps its own script in ``tools/`` exposing ``run(quick: bool = False) -> list[dict]``, one dict per
row with keys ``benchmark, case, value, unit, target, notes`` (values are medians over repeats). ``target`` is a
comparison with a number (``">= 2000"``, ``"<= 35"``, ``"< 2"``) or empty; the harness judges it against the
measured value in every run and writes ``yes`` or ``no`` in the ``met`` column (:func:`judge`): no script
writes "met" by hand.

| area | script |
|---|---|
| editing (issue 3: lightroom_basic throughput, 12 MP time and peak memory) | ``tools/bench_editing.py`` |
| generator (issue 4: eager / the zoo path (prepare_for_inference) / onnxruntime) | ``tools/bench_generator.py`` |
| rl (issue 5: agent updates per second, 12 MP inference) | ``tools/bench_rl.py`` |
| niqe (issue 7: one 1 MP photo, and the 64 DICM photos) | this file |
| studio (issue 13: one slider move, opening a 12 MP photo) | ``tools/bench_studio.py`` |

Every area runs in a fresh Python process (so peak-memory numbers are not polluted by another area) and the
areas run one after the other. A missing script, one without ``run``, or one that fails shows up as such in the
table; nothing is invented. Since these machines are noisy, compare numbers within one run: the ``ratio``
column divides each row's value by the first row of the same benchmark and unit in this run, and the header
records the load average before and after the run.

``-o FILE`` writes exactly the markdown block the README's benchmark section shows; ``--readme README.md``
replaces that block in the README (between the ``<!-- benchmark:begin -->`` and ``<!-- benchmark:end -->``
markers), so ``make bench`` regenerates both. ``tools/gpu_check.py`` writes its rows in the same format.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

AREAS: dict[str, str | None] = {
    "editing": "tools/bench_editing.py",
    "generator": "tools/bench_generator.py",
    "rl": "tools/bench_rl.py",
    "niqe": None,  # built in: bench_niqe below
    "studio": "tools/bench_studio.py",
}
COLUMNS = ("benchmark", "case", "value", "unit", "ratio", "target", "met", "notes")
HEADER = "| " + " | ".join(COLUMNS) + " |"
MARKERS = {
    "benchmark": ("<!-- benchmark:begin -->", "<!-- benchmark:end -->"),
    "gpu": ("<!-- gpu:begin -->", "<!-- gpu:end -->"),
}
_TARGET_RE = re.compile(r"^\s*(>=|<=|>|<|==)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$")


def judge(value: Any, target: str) -> str:
    """Decide a row's target from its measured value: ``"yes"``, ``"no"``, or ``""`` when there is nothing to judge.

    Args:
        value: the measured number (``None`` when the row was skipped or failed).
        target: ``""`` or a comparison with a number: ``">= 2000"``, ``"<= 35"``, ``"< 2"``, ``"> 0"``, ``"== 1"``.

    Returns:
        ``"yes"`` or ``"no"`` for a numeric value and a target; ``"-"`` for a target without a measured value;
        ``""`` for a row without a target.

    Raises:
        ValueError: the target is not of that form (a benchmark script wrote it wrong).

    Example:
        >>> judge(1.15, "<= 1.10"), judge(2518.4, ">= 2000"), judge(None, "< 2"), judge(3, "")
        ('no', 'yes', '-', '')
    """
    target = str(target or "").strip()
    if not target:
        return ""
    match = _TARGET_RE.match(target)
    if match is None:
        raise ValueError(f"target {target!r} is not a comparison with a number (>= 2000, <= 35, < 2, ...)")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        return "-"
    op, bound = match.group(1), float(match.group(2))
    ok = {
        ">=": value >= bound,
        "<=": value <= bound,
        ">": value > bound,
        "<": value < bound,
        "==": value == bound,
    }[op]
    return "yes" if ok else "no"


# ----------------------------------------------------------------------------------------------- NIQE


def _natural_image(h: int, w: int, seed: int = 0):
    """A deterministic photo-like gray image (1/f noise plus edges), so the benchmark needs no files."""
    import numpy as np

    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w))
    spec = amp * np.exp(2j * np.pi * rng.random(amp.shape))
    img = np.fft.irfft2(spec, s=(h, w))
    img = (img - img.min()) / (img.max() - img.min())
    img[h // 3 : h // 2, w // 4 : w // 2] += 0.3
    return np.clip(np.round(img * 220 + 15), 0, 255)


def bench_niqe(quick: bool = False) -> list[dict[str, Any]]:
    """NIQE speed: one 1 MP (1152 x 864) gray photo, and the 64 DICM photos when ../shared is present."""
    import torch

    from zoo.metrics import niqe as nq

    params = os.environ.get(nq.ENV_VAR) or str(ROOT.parent / "shared" / "data" / "niqe" / "niqe_pris_params.npz")
    if not Path(params).is_file():
        return [_row("niqe", "1 MP photo", None, "s/image", notes=f"skipped: no pristine model ({nq.ENV_VAR})")]
    model = nq.PristineModel.load(params)
    img = _natural_image(864, 1152)
    nq.niqe_gray(img, model)  # warm-up (imports, allocator)
    times = []
    for _ in range(3 if quick else 7):
        t0 = time.perf_counter()
        nq.niqe_gray(img, model)
        times.append(time.perf_counter() - t0)
    rows = [
        _row(
            "niqe",
            "1 MP photo (1152x864), gray",
            round(statistics.median(times), 3),
            "s/image",
            target="< 1",
            notes=f"median of {len(times)} (min {min(times):.3f}); NumPy/SciPy float64, "
            f"{torch.get_num_threads()} torch thread(s)",
        )
    ]
    dicm = ROOT.parent / "shared" / "data" / "lowlight" / "DICM"
    if dicm.is_dir() and not quick:
        from zoo.inference import read_image

        files = sorted(p for p in dicm.iterdir() if p.suffix.lower() in (".jpg", ".png", ".bmp"))
        imgs = [nq.rgb_to_gray_matlab(nq.to_uint8_numbers(read_image(f)[None])[0]) for f in files]
        t0 = time.perf_counter()
        values = [nq.niqe_gray(g, model) for g in imgs]
        dt = time.perf_counter() - t0
        mp = sum(g.size for g in imgs) / 1e6
        rows.append(
            _row(
                "niqe",
                f"DICM, {len(files)} photos ({mp:.1f} MP), gray",
                round(dt, 2),
                "s (set)",
                notes=f"mean NIQE {statistics.fmean(values):.4f} (MATLAB 4.2545); decoding excluded",
            )
        )
    return rows


def _row(benchmark: str, case: str, value: Any, unit: str, *, target: str = "", notes: str = "") -> dict[str, Any]:
    return {"benchmark": benchmark, "case": case, "value": value, "unit": unit, "target": target, "notes": notes}


# ----------------------------------------------------------------------------------------------- harness


def _run_area_here(area: str, quick: bool, threads: int | None) -> list[dict[str, Any]]:
    """Run one area in this process (the child side of :func:`run_area`)."""
    import importlib.util

    import torch

    if threads:
        torch.set_num_threads(threads)
    script = AREAS[area]
    if script is None:
        return bench_niqe(quick)
    spec = importlib.util.spec_from_file_location(f"_bench_{area}", ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if run is None:
        return [_row(area, "-", None, "", notes=f"{script} has no run(quick) function")]
    return list(run(quick=quick))


def run_area(area: str, quick: bool, threads: int | None, timeout: float) -> list[dict[str, Any]]:
    """Run one area in a fresh process; a missing, failing or hanging script becomes an explanatory row."""
    script = AREAS[area]
    if script is not None and not (ROOT / script).is_file():
        return [_row(area, "-", None, "", notes=f"missing: {script} does not exist yet")]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", area, "--rows", str(out)]
        cmd += ["--quick"] if quick else []
        cmd += ["--threads", str(threads)] if threads else []
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return [_row(area, "-", None, "", notes=f"failed: took longer than {timeout:.0f} s")]
        if proc.returncode != 0 or not out.is_file():
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return [_row(area, "-", None, "", notes=f"failed (exit {proc.returncode}): {last[0][:200]}")]
        rows = json.loads(out.read_text())
    for r in rows:
        r.setdefault("notes", "")
        r["area"] = area
        r["area_seconds"] = round(time.perf_counter() - t0, 1)
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """``ratio`` = value / value of the first row with the same benchmark and unit (within this run)."""
    first: dict[tuple[str, str], float] = {}
    for r in rows:
        v = r.get("value")
        if "ratio" in r and r["ratio"] not in (None, ""):
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            r["ratio"] = ""
            continue
        key = (str(r.get("benchmark")), str(r.get("unit")))
        if key not in first and v != 0:
            first[key] = float(v)
            r["ratio"] = "1.00"
        elif key in first:
            r["ratio"] = f"{v / first[key]:.2f}"
        else:
            r["ratio"] = ""


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (``/proc/loadavg``), or ``n/a``."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def machine_description(threads: int | None, load: tuple[str, str] | None = None) -> list[str]:
    """Lines describing the machine, software and run (for the table's header).

    Args:
        threads: the torch thread count the areas ran with (None: torch's default).
        load: the load averages before and after the run (``/proc/loadavg``), when measured.
    """
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM"
    except ImportError:
        mem = "RAM unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    lines = [
        f"- machine: {cpu}, {usable} usable core(s) of {os.cpu_count()}, {mem}, {gpu}",
        f"- software: Python {platform.python_version()}, torch {torch.__version__}, {platform.system()} "
        f"{platform.release()}; torch threads: {threads or torch.get_num_threads()}",
        f"- run: {_dt.datetime.now().isoformat(timespec='seconds')}"
        + (f", commit {commit}" if commit else "")
        + "; values are medians over repeats; ratios compare rows of the same benchmark within this run; "
        "`met` is judged from the value in this run",
    ]
    if load is not None:
        lines.append(f"- load average (1, 5, 15 min): {load[0]} before, {load[1]} after")
    return lines


def render(rows: list[dict[str, Any]], header: list[str], command: str, title: str | None = None) -> str:
    """The markdown block: an optional title line, the machine lines, the command, and the table.

    The ``met`` column is always judged here from ``value`` and ``target`` (:func:`judge`); a ``met`` key in a row
    is ignored. This is exactly what ``-o FILE`` writes and what the README shows between its markers.
    """
    lines = [f"**{title}**", ""] if title else []
    lines += [*header, f"- reproduce: `{command}`", "", HEADER, "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = []
        for c in COLUMNS:
            v = judge(r.get("value"), r.get("target", "")) if c == "met" else r.get(c, "")
            cells.append("-" if v is None else " ".join(str(v).replace("|", "/").split()))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_tables(text: str) -> list[list[dict[str, str]]]:
    """Every table of ``text`` whose header is the harness's (:data:`HEADER`), as lists of row dicts (cells as text).

    A row with the wrong number of cells is kept with the key ``"_cells"`` holding its cell count, so a checker can
    report it.
    """
    tables: list[list[dict[str, str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != HEADER:
            i += 1
            continue
        rows: list[dict[str, str]] = []
        i += 2  # header and separator
        while i < len(lines) and lines[i].strip().startswith("|"):
            cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
            row = dict(zip(COLUMNS, cells, strict=False))
            if len(cells) != len(COLUMNS):
                row["_cells"] = str(len(cells))
            rows.append(row)
            i += 1
        tables.append(rows)
    return tables


def replace_block(path: Path, text: str, key: str = "benchmark") -> None:
    """Replace the generated block between the ``key`` markers of a markdown file (the README) with ``text``.

    Raises:
        SystemExit: the file lacks the markers (a sentence says which).
    """
    begin, end = MARKERS[key]
    doc = path.read_text(encoding="utf-8")
    if doc.count(begin) != 1 or doc.count(end) != 1 or doc.index(begin) > doc.index(end):
        raise SystemExit(f"{path} has no single {begin} ... {end} block; add the two markers where the table goes.")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{head}{begin}\n{text}{end}{tail}", encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller images (each script decides)")
    parser.add_argument("--only", default=",".join(AREAS), help=f"comma-separated areas (default: {','.join(AREAS)})")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in every area")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per area")
    parser.add_argument("-o", "--output", type=Path, default=None, help="also write the markdown block here")
    parser.add_argument(
        "--readme", type=Path, default=None, help="also replace the block between the README's benchmark markers"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # inside the per-area process
        rows = _run_area_here(args.child, args.quick, args.threads)
        args.rows.write_text(json.dumps(rows, default=str))
        return 0

    areas = [a.strip() for a in args.only.split(",") if a.strip()]
    unknown = [a for a in areas if a not in AREAS]
    if unknown:
        parser.error(f"unknown area(s) {unknown}; known: {', '.join(AREAS)}")
    load_before = load_average()
    rows: list[dict[str, Any]] = []
    for area in areas:
        print(f"running {area} ...", file=sys.stderr, flush=True)
        rows += run_area(area, args.quick, args.threads, args.timeout)
    add_ratios(rows)
    command = "python tools/benchmark.py" + (" --quick" if args.quick else "")
    command += f" --only {args.only}" if args.only != ",".join(AREAS) else ""
    command += f" --threads {args.threads}" if args.threads else ""
    text = render(rows, machine_description(args.threads, (load_before, load_average())), command)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    if args.readme:
        replace_block(args.readme, text)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
