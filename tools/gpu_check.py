"""Check and measure the CUDA paths: training every recipe, checkpoints, MLflow GPU metrics, DDP/NCCL, speed.

    python tools/gpu_check.py [--steps 200] [--recipes recipes/a.yaml,...] [--synthetic-data]
                              [--skip-train] [--skip-ddp] [--skip-speed] [--cpu] [-o FILE] [--readme README.md]

On a machine with CUDA it:

- **trains every recipe in** ``recipes/`` for ``--steps`` steps on the GPU with the recipe's own ``train.amp``
  (bf16 autocast), ``train.channels_last`` and ``train.compile`` settings, through the recipe's trainer, and
  checks that the logged losses are finite, that the checkpoint loads on the CPU
  (``zoo.checkpoint_io.load_generator``) and gives the trained model's outputs within bf16 tolerance, and that
  the MLflow run holds GPU system metrics (utilisation, memory) beside the CPU ones. A recipe whose data is not
  on this machine is skipped, saying so (``--synthetic-data`` trains it on synthetic scenes with the recipe's own
  crop size and augmentation instead). Pretrained backbone weights are never downloaded: ``pretrained`` keys are
  turned off (random weights do not change what runs on the GPU);
- **DDP**: runs ``zoo train --nproc N`` on every visible GPU (NCCL; one MLflow run, written by rank 0 alone);
  with one GPU the world size is 1 and no process group is made;
- **speed**, as rows of the benchmark harness (``tools/benchmark.py``): EnlightenGAN training steps/s
  (``recipes/enlightengan.yaml``: 320 px crops, batch 32), RL agent updates/s (``recipes/rl_edit.yaml``: batch 20,
  5 critic steps) next to the CPU figure of the same machine, with the time of one critic step against the rest
  of the update and the GPU's busy fraction (target >= 100 updates/s; the notes say what limits it), the 12-slider
  edit of a 12 MP photo, EnlightenGAN inference at 1080p, and the peak GPU memory of each.

It prints one table titled with the card's name. ``-o FILE`` writes it; ``--readme README.md`` puts it between the
README's ``<!-- gpu:begin -->`` and ``<!-- gpu:end -->`` markers.

Without CUDA (or with ``--cpu``) it runs its CPU fallback: the first line and the table title say that no GPU
was measured; each recipe trains for a few steps at tiny sizes (``--set`` overrides: batch 2, 64 px crops), the
checkpoint and MLflow checks run (CPU system metrics only), DDP runs with gloo on 2 CPU processes, and the speed
functions run at tiny sizes. It exits 0 unless a check fails (a speed target missed is not a failure).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import bench_rl  # noqa: E402
from tools.benchmark import judge, load_average, machine_description, render, replace_block  # noqa: E402

RL_TARGET = 100  # updates/s on an H100-class card (issue 15)
BF16_MEAN_TOL = 1e-2  # mean |GPU bf16 output - CPU float32 output| for images in [0, 1]
EXACT_TOL = 1e-5  # the CPU fallback compares float32 with float32
CPU_TINY = {"batch_size": 2, "crop_size": 64, "synthetic_size": 8}
SYSTEM_CPU_KEYS = ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes")


def _row(benchmark: str, case: str, value: Any, unit: str, target: str = "", notes: str = "") -> dict[str, Any]:
    return {"benchmark": benchmark, "case": case, "value": value, "unit": unit, "target": target, "notes": notes}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


# ----------------------------------------------------------------------------------------------- recipes


def recipe_files(spec: str | None) -> list[Path]:
    """The recipes to train: ``--recipes a.yaml,b.yaml``, or every ``recipes/*.yaml``."""
    if spec:
        return [Path(p.strip()) for p in spec.split(",") if p.strip()]
    return sorted((ROOT / "recipes").glob("*.yaml"))


def _pretrained_overrides(raw: Any, prefix: str = "") -> list[str]:
    """``--set`` overrides turning off every ``pretrained: true`` of a resolved recipe (no downloads)."""
    out: list[str] = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if key == "pretrained" and value is True:
                out.append(f"{dotted}=false")
            else:
                out += _pretrained_overrides(value, dotted)
    return out


def _synthetic_data(data: dict[str, Any], size: int, crop: int | None) -> dict[str, Any]:
    """A synthetic-scenes data block with the recipe's own crop, resize and augmentation keys."""
    keep = ("crop_size", "load_size", "resize", "hflip", "vflip", "darken", "darken_factor")
    block: dict[str, Any] = {"name": "synthetic", "size": size}
    block.update({k: data[k] for k in keep if k in data})
    if crop is not None and block.get("crop_size"):
        block["crop_size"] = crop
    side = max(int(block.get("crop_size") or 0), int(block.get("load_size") or 0), 96)
    block["height"], block["width"] = side, side + side // 3
    return block


def _data_override(block: dict[str, Any]) -> str:
    """A ``--set data={...}`` override (YAML flow style) that replaces the whole data block."""
    import yaml

    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in block.items()}
    return "data=" + yaml.safe_dump(plain, default_flow_style=True, width=10_000).strip()


def store_uri(out: Path) -> str:
    """The MLflow store of one check (a SQLite file in its folder)."""
    return f"sqlite:///{out / 'mlflow.db'}"


def prepare_recipe(
    path: Path, *, device: str, steps: int, out: Path, tiny: bool, synthetic: bool
) -> tuple[Any | None, list[str], str]:
    """Load a recipe for the check: its own settings, plus steps, device, tracking and (CPU) tiny sizes.

    Returns:
        ``(recipe or None when skipped, the --set overrides used, a note)``; the note says why a recipe was
        skipped, or what was changed besides steps and device.
    """
    from zoo.errors import ZooError
    from zoo.recipe import load_recipe, resolve_file

    raw = resolve_file(path)
    out.mkdir(parents=True, exist_ok=True)
    overrides = [
        f"train.steps={steps}",
        f"train.device={device}",
        f"train.out_dir={out / 'runs'}",
        f"train.checkpoint_every={steps}",
        f"train.sample_every={steps}",
        f"train.log_every={max(1, steps // 20)}",
        "train.samples=2",
        "tracking.enabled=true",
        f"tracking.uri={store_uri(out)}",
        "tracking.system_metrics=true",
        "tracking.log_model=false",
        "tracking.log_checkpoints=false",
    ]
    notes: list[str] = []
    pretrained = _pretrained_overrides(raw)
    if pretrained:
        overrides += pretrained
        notes.append("random backbone weights (" + ", ".join(o.split("=")[0] for o in pretrained) + "=false)")
    data = dict(raw.get("data") or {})
    crop = []
    if tiny:
        overrides.append(f"train.batch_size={CPU_TINY['batch_size']}")
        if data.get("name") == "synthetic":
            overrides.append(f"data.size={CPU_TINY['synthetic_size']}")
        if data.get("crop_size"):
            crop = [f"data.crop_size={CPU_TINY['crop_size']}"]
    try:
        recipe = load_recipe(path, overrides + crop)
        overrides += crop
    except ZooError as exc:
        if not crop:
            return None, overrides, f"failed: the recipe does not load: {exc}"
        try:  # a network with a fixed input size (a 256 px critic, say) needs the recipe's own crop
            recipe = load_recipe(path, overrides)
        except ZooError as exc2:
            return None, overrides, f"failed: the recipe does not load: {exc2}"
        crop = []
    if tiny:
        notes.append(f"tiny: batch {CPU_TINY['batch_size']}" + (f", {CPU_TINY['crop_size']} px crops" if crop else ""))
    reason = data_unavailable(recipe)
    if reason is not None:
        if not synthetic:
            return (
                None,
                overrides,
                f"skipped: data unavailable ({reason}); --synthetic-data trains it on synthetic scenes",
            )
        block = _synthetic_data(
            dict(recipe.to_dict()["data"]),
            CPU_TINY["synthetic_size"] if tiny else 256,
            CPU_TINY["crop_size"] if crop else None,
        )
        overrides.append(_data_override(block))
        recipe = load_recipe(path, overrides)
        notes.append(f"data unavailable ({reason}): synthetic scenes with the recipe's crop and augmentation")
    return recipe, overrides, "; ".join(notes)


def data_unavailable(recipe: Any) -> str | None:
    """Why the recipe's dataset cannot be built here (a sentence), or None when it can."""
    from zoo.errors import ZooError
    from zoo.registry import create

    try:
        dataset = create("dataset", recipe.data, where=recipe.where("data"))
    except ZooError as exc:
        return str(exc).splitlines()[0][:200]
    return None if len(dataset) > 0 else "the dataset is empty"


# ----------------------------------------------------------------------------------------------- training check


def _probe_images(n: int = 2, size: int = 128) -> Any:
    return bench_rl._smooth_images(n, size, size + size // 2, seed=5)


def _image(out: Any) -> Any:
    return out["image"] if isinstance(out, dict) else out


def check_training(path: Path, *, device: str, steps: int, out: Path, tiny: bool, synthetic: bool) -> list[dict]:
    """Train one recipe on ``device`` and check losses, the checkpoint on the CPU and MLflow's system metrics."""
    name = path.stem
    recipe, _, note = prepare_recipe(path, device=device, steps=steps, out=out, tiny=tiny, synthetic=synthetic)
    if recipe is None:
        return [_row("gpu_train", f"{name}: train {steps} steps", None, "steps/s", notes=note)]
    cfg = recipe.train
    settings = f"amp {cfg.amp}, channels_last {cfg.channels_last}, compile {cfg.compile}, batch {cfg.batch_size}"
    _peak_reset(device)
    # explicit: MLflow exports MLFLOW_TRACKING_URI once a store is set, and that variable beats tracking.uri
    trainer = recipe.trainer_cls(recipe, device=device, tracking_uri=store_uri(out), quiet=True)
    t0 = time.perf_counter()
    try:
        result = trainer.fit()
    except Exception as exc:  # a failed recipe is a row, and the other recipes still run
        last = f"{type(exc).__name__}: {exc}".splitlines()[0][:240]
        traceback.print_exc(file=sys.stderr)
        return [_row("gpu_train", f"{name}: train {steps} steps", None, "steps/s", notes=f"failed: {last}")]
    _sync(device)
    wall = time.perf_counter() - t0
    peak = _peak_gb(device)
    losses = {k: v for k, v in result.metrics.items() if k.startswith("loss")}
    shown = ", ".join(f"{k} {v:.3g}" for k, v in sorted(losses.items())[:4])
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=result.tracking_uri)
    run = client.get_run(result.run_id)
    # steps/s from the trainer's own per-window step times (start-up, compilation and checkpoints excluded)
    step_times = [m.value for m in client.get_metric_history(result.run_id, "perf/step_time_s")]
    if step_times:
        rate, how = 1.0 / statistics.median(step_times), f"median of {len(step_times)} logged perf/step_time_s"
    else:
        rate, how = result.steps / wall, "wall time of the whole run"
    where = "" if trainer.device.type == "cuda" else " (CUDA-only settings, inactive on the CPU)"
    rows = [
        _row(
            "gpu_train",
            f"{name}: train {result.steps} steps",
            round(rate, 2),
            "steps/s",
            notes=f"{settings}{where}; {how}; last {shown}"
            + (f"; peak {peak:.2f} GB" if peak is not None else "")
            + (f"; {note}" if note else ""),
        )
    ]
    # losses finite: every logged value of every metric key, read back from MLflow
    loss_keys = [k for k in run.data.metrics if not k.startswith("system/")]
    bad = [k for k in loss_keys if not all(math.isfinite(m.value) for m in client.get_metric_history(result.run_id, k))]
    rows.append(
        _row(
            "gpu_check",
            f"{name}: non-finite logged metrics",
            len(bad),
            "count",
            "== 0",
            f"{len(loss_keys)} metric keys read back from MLflow" + (f"; non-finite: {', '.join(bad)}" if bad else ""),
        )
    )
    # the checkpoint on the CPU against the trained model as it ran (its device, autocast, memory format)
    on_gpu = trainer.device.type == "cuda"
    rows.append(compare_checkpoint(name, result.checkpoint, trainer.generator, trainer, bf16=on_gpu and cfg.amp))
    # system metrics beside the losses (rank 0's run)
    keys = sorted(k for k in run.data.metrics if k.startswith("system/"))
    gpu_keys = [k for k in keys if k.startswith("system/gpu_")]
    cpu_found = [k for k in SYSTEM_CPU_KEYS if k in keys]
    if on_gpu:
        wanted = [k for k in gpu_keys if "utilization" in k or "memory" in k]
        rows.append(
            _row(
                "gpu_check",
                f"{name}: MLflow GPU system metrics (utilisation, memory)",
                len(wanted),
                "keys",
                ">= 2",
                f"{', '.join(k.removeprefix('system/') for k in wanted[:4]) or 'none'}; CPU beside them: "
                f"{', '.join(k.removeprefix('system/') for k in cpu_found) or 'none'}",
            )
        )
    else:
        rows.append(
            _row(
                "gpu_check",
                f"{name}: MLflow system metrics (CPU only: no GPU here)",
                len(cpu_found),
                "keys",
                ">= 2",
                f"{', '.join(k.removeprefix('system/') for k in cpu_found) or 'none'}; GPU keys: "
                f"{len(gpu_keys)} (none expected without CUDA)",
            )
        )
    del trainer
    return rows


def compare_checkpoint(name: str, checkpoint: Path, live: Any, trainer: Any, *, bf16: bool) -> dict[str, Any]:
    """One check row: the checkpoint loaded on the CPU (float32) against the live trained model on its device.

    Images are compared by their mean absolute difference (bf16 tolerance when the run used bf16 autocast, else
    float32's). A slider generator picks discrete levels by argmax, and bf16 rounding legitimately flips near
    ties, so for it the row is the fraction of slider values that agree (the image difference goes in the notes).
    """
    import torch

    from zoo import devices
    from zoo.checkpoint_io import load_generator

    cpu_gen, _ = load_generator(checkpoint=checkpoint, device="cpu")
    live = live.eval()
    x = _probe_images()
    with torch.inference_mode():
        ref = cpu_gen(x)
        xin = x.to(trainer.device)
        if trainer.channels_last:
            xin = xin.contiguous(memory_format=torch.channels_last)
        with devices.autocast(trainer.device, bf16):
            got = live(xin)
    diff = (_image(got).float().cpu() - _image(ref).float()).abs()
    case = f"{name}: checkpoint on the CPU vs the trained model" + (" (bf16)" if bf16 else "")
    where = f"on 2 x 3 x 128 x 192; {checkpoint.name} loaded with zoo.checkpoint_io.load_generator"
    image = f"image mean abs {float(diff.mean()):.2e}, max abs {float(diff.max()):.2e}"
    if isinstance(got, dict) and isinstance(ref, dict) and "params" in got and "params" in ref:
        same = (got["params"].float().cpu() - ref["params"].float()).abs() <= 1e-6
        target = ">= 0.9" if bf16 else "== 1"
        return _row(
            "gpu_check",
            f"{case}: slider values",
            round(float(same.float().mean()), 4),
            "agree",
            target,
            f"{image}; {where}",
        )
    tol = BF16_MEAN_TOL if bf16 else EXACT_TOL
    return _row(
        "gpu_check",
        case,
        float(f"{float(diff.mean()):.2e}"),
        "mean abs",
        f"<= {tol:g}",
        f"max abs {float(diff.max()):.2e} {where}",
    )


# ----------------------------------------------------------------------------------------------- DDP


def check_ddp(path: Path, *, device: str, out: Path, tiny: bool, synthetic: bool, steps: int = 20) -> list[dict]:
    """``zoo train --nproc N`` (NCCL on every visible GPU, or gloo on 2 CPU processes); one MLflow run (rank 0)."""
    import mlflow
    import torch

    nproc = torch.cuda.device_count() if device == "cuda" else 2
    backend = "NCCL" if device == "cuda" else "gloo"
    ddp_out = out / "ddp"
    recipe, overrides, note = prepare_recipe(
        path, device=device, steps=steps, out=ddp_out, tiny=tiny, synthetic=synthetic
    )
    case = f"zoo train --nproc {nproc} ({backend}), {path.stem}, {steps} steps"
    if recipe is None:
        return [_row("gpu_ddp", case, None, "MLflow runs", "== 1", note)]
    uri = store_uri(ddp_out)
    cmd = [sys.executable, "-m", "zoo", "train", str(path), "--quiet", "--nproc", str(nproc), "--tracking-uri", uri]
    for item in overrides:
        cmd += ["--set", item]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["OMP_NUM_THREADS"] = "1"
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return [_row("gpu_ddp", case, None, "MLflow runs", "== 1", f"failed (exit {proc.returncode}): {last[0][:200]}")]
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    world = runs[0].data.tags.get("zoo.world_size", "?") if runs else "?"
    group = "no process group (world size 1)" if nproc == 1 else f"world size tag {world}"
    return [
        _row(
            "gpu_ddp",
            case,
            len(runs),
            "MLflow runs",
            "== 1",
            f"{group}; {wall:.0f} s including start-up; rank 0 alone logs" + (f"; {note}" if note else ""),
        )
    ]


# ----------------------------------------------------------------------------------------------- speed


def speed_gan_train(device: str, batch: int = 32, crop: int = 320, steps: int = 20) -> list[dict]:
    """EnlightenGAN training steps/s with the official recipe (synthetic scenes at the recipe's crop size)."""
    import torch

    from zoo import devices
    from zoo.data.loader import fixed_batch
    from zoo.recipe import load_recipe, resolve_file
    from zoo.registry import create

    path = ROOT / "recipes" / "enlightengan.yaml"
    raw = resolve_file(path)
    data = _synthetic_data(dict(raw.get("data") or {}), max(batch, 1), crop)
    overrides = [f"train.batch_size={batch}", f"train.device={device}", "tracking.enabled=false"]
    overrides += _pretrained_overrides(raw)
    overrides.append(_data_override(data))
    recipe = load_recipe(path, overrides)
    cfg = recipe.train
    trainer = recipe.trainer_cls(recipe, device=device, quiet=True)
    trainer.dataset = create("dataset", recipe.data)
    trainer.build()
    batch_data = devices.to_device(fixed_batch(trainer.dataset, batch, seed=0), trainer.device, trainer.channels_last)
    for _ in range(3):  # warm-up (and torch.compile when the recipe asks for it)
        trainer.train_step(batch_data)
    _peak_reset(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(batch_data)
    _sync(device)
    rate = steps / (time.perf_counter() - t0)
    peak = _peak_gb(device)
    case = f"EnlightenGAN training (enlightengan.yaml), batch {batch}, {crop} px crops"
    notes = f"{steps} steps after 3 warm-up; amp {cfg.amp}, channels_last {cfg.channels_last}, compile {cfg.compile}"
    rows = [_row("gpu_speed", case, round(rate, 2), "steps/s", notes=notes + "; synthetic scenes, random VGG")]
    if peak is not None:
        rows.append(_row("gpu_memory", case, round(peak, 2), "GB", notes="torch.cuda.max_memory_allocated"))
    del trainer
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rows


def _busy_fraction(fn: Any) -> float | None:
    """Fraction of one call's wall time during which CUDA kernels ran (torch.profiler), or None on failure."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    try:
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            wall = time.perf_counter() - t0
        from torch.autograd import DeviceType

        # the kernels themselves (device-side events), not the CPU ops that launched them
        kernel_us = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == DeviceType.CUDA)
        return min(kernel_us / 1e6 / wall, 1.0) if kernel_us > 0 else None
    except Exception:  # the profiler is a diagnosis; the speed row stands without it
        return None


def speed_rl(device: str, batch: int = 20, critic_steps: int = 5, n: int = 20, cpu_n: int = 3) -> list[dict]:
    """RL agent updates/s (the paper's settings) on ``device``, the CPU figure, the time split and what limits it."""
    import torch

    case = f"RL agent update (rl_edit.yaml), batch {batch}, {critic_steps} critic steps"
    on_gpu = device.startswith("cuda")
    _peak_reset(device)
    upd = bench_rl.bench_updates(batch, critic_steps, repeats=3, n=n, device=device)
    parts = bench_rl.bench_parts(batch, critic_steps, n=max(3, n // 4), device=device)
    cpu = upd if not on_gpu else bench_rl.bench_updates(batch, critic_steps, repeats=1, n=cpu_n, device="cpu")
    split = (
        f"one critic step {parts['critic_step_s'] * 1000:.1f} ms x {critic_steps}, act + edit + reward + policy "
        f"update {parts['rest_s'] * 1000:.1f} ms"
    )
    notes = f"median (min {upd['min']:.1f}, max {upd['max']:.1f}); {split}"
    gflop = bench_rl.update_flops(batch, critic_steps, device=device)
    if gflop is not None:
        notes += f"; {gflop:.1f} GFLOP per update, {gflop * upd['median']:.0f} GFLOP/s"
    rows = [_row("gpu_speed", case, round(upd["median"], 2), "updates/s", f">= {RL_TARGET}" if on_gpu else "", notes)]
    if on_gpu:
        trainer = bench_rl._trainer(bench_rl.paper_recipe(batch, critic_steps, None, device), device)
        data = bench_rl._batch(batch, device)
        trainer.train_step(data)
        busy = _busy_fraction(lambda: trainer.train_step(data))
        critic_share = parts["critic_step_s"] * critic_steps / max(parts["update_s"], 1e-9)
        if upd["median"] >= RL_TARGET:
            limit = "target met"
        elif busy is not None and busy < 0.5:
            limit = (
                f"GPU busy {busy:.0%} of an update: bound by kernel launches and Python on the CPU side "
                f"(critic steps {critic_share:.0%} of the time); CUDA graphs or torch.compile would help"
            )
        else:
            limit = (
                f"GPU busy {busy:.0%} of an update: bound by GPU compute (critic steps {critic_share:.0%})"
                if busy is not None
                else f"critic steps {critic_share:.0%} of the time"
            )
        rows[0]["notes"] += f"; {limit}"
        rows.append(
            _row(
                "gpu_speed",
                f"{case}, CPU of this machine ({torch.get_num_threads()} threads)",
                round(cpu["median"], 2),
                "updates/s",
                notes=f"{cpu_n} updates; the README's CPU table has the 2-core figure",
            )
        )
        rows.append(_row("gpu_memory", case, round(upd["peak_gb"], 3), "GB", notes="torch.cuda.max_memory_allocated"))
        del trainer
    return rows


def speed_edit(device: str, height: int = 3000, width: int = 4000, repeats: int = 3) -> list[dict]:
    """The 12-slider ``lightroom_basic`` edit of one photo (all sliders non-zero)."""
    import torch

    from zoo.registry import create

    torch.manual_seed(0)
    sw = create("software", "lightroom_basic")
    x = bench_rl._smooth_images(1, height, width, 4).to(device)
    p = torch.rand(1, 12) * 1.6 - 0.8
    p[p.abs() < 0.1] = 0.3
    p = p.to(device)
    times = []
    with torch.inference_mode():
        sw.apply(x[:, :, : height // 4, : width // 4], p)  # warm-up
        _peak_reset(device)
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            sw.apply(x, p)
            _sync(device)
            times.append(time.perf_counter() - t0)
    case = f"lightroom_basic 12-slider edit, {width}x{height} ({height * width / 1e6:.2g} MP)"
    rows = [_row("gpu_speed", case, round(statistics.median(times), 3), "s/image", notes=f"median of {repeats}")]
    peak = _peak_gb(device)
    if peak is not None:
        rows.append(
            _row("gpu_memory", case, round(peak, 2), "GB", notes="torch.cuda.max_memory_allocated, input included")
        )
    return rows


def speed_enlightengan(device: str, height: int = 1080, width: int = 1920, repeats: int = 5) -> list[dict]:
    """EnlightenGAN generator inference on one photo (random weights; bf16 autocast and channels_last on CUDA)."""
    import torch

    from zoo import devices
    from zoo.registry import create

    torch.manual_seed(0)
    dev = torch.device(device)
    gen = create("generator", "enlightengan_unet").eval().to(dev)
    cl = devices.uses_channels_last(dev)
    if cl:
        gen = gen.to(memory_format=torch.channels_last)
    x = bench_rl._smooth_images(1, height, width, 6).to(dev)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), devices.autocast(dev, True):
        gen(x)  # warm-up (cuDNN algorithm choice)
        _peak_reset(device)
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            gen(x)
            _sync(device)
            times.append(time.perf_counter() - t0)
    case = f"EnlightenGAN inference, {width}x{height}"
    how = "bf16 autocast, channels_last" if dev.type == "cuda" else "float32, eager"
    rows = [_row("gpu_speed", case, round(statistics.median(times), 4), "s/image", notes=f"median of {repeats}; {how}")]
    peak = _peak_gb(device)
    if peak is not None:
        rows.append(_row("gpu_memory", case, round(peak, 2), "GB", notes="torch.cuda.max_memory_allocated"))
    return rows


def run_speed(device: str, tiny: bool) -> list[dict]:
    """Every speed row (full sizes on CUDA; tiny sizes on the CPU fallback, where they only prove the code runs)."""
    jobs = (
        [
            ("EnlightenGAN training", lambda: speed_gan_train(device, batch=2, crop=64, steps=2)),
            ("RL update", lambda: speed_rl(device, batch=4, critic_steps=2, n=2)),
            ("12-slider edit", lambda: speed_edit(device, 192, 256, repeats=1)),
            ("EnlightenGAN inference", lambda: speed_enlightengan(device, 128, 192, repeats=1)),
        ]
        if tiny
        else [
            ("EnlightenGAN training", lambda: speed_gan_train(device)),
            ("RL update", lambda: speed_rl(device)),
            ("12-slider edit", lambda: speed_edit(device)),
            ("EnlightenGAN inference", lambda: speed_enlightengan(device)),
        ]
    )
    rows: list[dict] = []
    for what, job in jobs:
        try:
            rows += job()
        except Exception as exc:  # one failing measurement is a row; the others still run
            traceback.print_exc(file=sys.stderr)
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            rows.append(_row("gpu_speed", what, None, "", notes=f"failed: {msg}"))
    return rows


# ----------------------------------------------------------------------------------------------- main


@contextlib.contextmanager
def check_environment(cuda: bool) -> Any:
    """System metrics on and sampled often enough that a short run records some; no downloads. Restored after."""
    wanted = {
        "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": "true",
        "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": os.environ.get(
            "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1" if cuda else "0.02"
        ),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
    }
    import mlflow

    saved = {k: os.environ.get(k) for k in (*wanted, "MLFLOW_TRACKING_URI")}
    uri_set = mlflow.is_tracking_uri_set()
    uri = mlflow.get_tracking_uri() if uri_set else None
    os.environ.update(wanted)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(uri)  # the runs set MLflow's global store (and its environment variable)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def first_line(cuda: bool) -> str:
    import torch

    if cuda:
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return (
            f"GPU check on {', '.join(names)} ({torch.cuda.device_count()} visible GPU(s), CUDA "
            f"{torch.version.cuda}, torch {torch.__version__})"
        )
    why = "--cpu was given" if torch.cuda.is_available() else "CUDA is not available here"
    return f"GPU check: NO GPU MEASURED ({why}); running the CPU fallback at tiny sizes, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps per recipe (default: 200 on CUDA, 3 on the CPU)"
    )
    parser.add_argument("--recipes", default=None, help="comma-separated recipe files (default: every recipes/*.yaml)")
    parser.add_argument("--ddp-recipe", default=None, help="recipe for the DDP run (default: the first that trains)")
    parser.add_argument(
        "--synthetic-data", action="store_true", help="train recipes whose data is absent on synthetic scenes"
    )
    parser.add_argument("--skip-train", action="store_true", help="no training checks")
    parser.add_argument("--skip-ddp", action="store_true", help="no DDP run")
    parser.add_argument("--skip-speed", action="store_true", help="no speed rows")
    parser.add_argument("--cpu", action="store_true", help="run the CPU fallback even when CUDA is present")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for runs and the MLflow store (default: a temp dir)"
    )
    parser.add_argument("-o", "--output", type=Path, default=None, help="also write the markdown block here")
    parser.add_argument(
        "--readme", type=Path, default=None, help="put the table between the README's gpu markers (CUDA only)"
    )
    args = parser.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    device = "cuda" if cuda else "cpu"
    tiny = not cuda
    steps = args.steps or (200 if cuda else 3)
    print(first_line(cuda), flush=True)
    load_before = load_average()
    rows: list[dict] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(check_environment(cuda))
        out = args.out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zoo_gpu_check_")))
        out.mkdir(parents=True, exist_ok=True)
        files = recipe_files(args.recipes)
        if not args.skip_train:
            for path in files:
                print(f"training {path.name} ...", file=sys.stderr, flush=True)
                rows += check_training(
                    path, device=device, steps=steps, out=out / path.stem, tiny=tiny, synthetic=args.synthetic_data
                )
        if not args.skip_ddp:
            trained = {
                r["case"].split(":")[0] for r in rows if r["benchmark"] == "gpu_train" and r["value"] is not None
            }
            pick = Path(args.ddp_recipe) if args.ddp_recipe else next((p for p in files if p.stem in trained), None)
            pick = pick or (files[0] if files else None)
            if pick is not None:
                print(f"DDP with {pick.name} ...", file=sys.stderr, flush=True)
                rows += check_ddp(pick, device=device, out=out, tiny=tiny, synthetic=args.synthetic_data)
        if not args.skip_speed:
            print("speed ...", file=sys.stderr, flush=True)
            rows += run_speed(device, tiny)
    for r in rows:
        r.setdefault("ratio", "")
    title = (
        f"GPU check on {torch.cuda.get_device_name(0)}"
        if cuda
        else "GPU check: NO GPU MEASURED (CPU fallback at tiny sizes; these rows only show that the checks run)"
    )
    command = " ".join(["python tools/gpu_check.py", *(sys.argv[1:] if argv is None else argv)])
    text = render(rows, machine_description(None, (load_before, load_average())), command, title=title)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    if args.readme:
        if cuda:
            replace_block(args.readme, text, key="gpu")
        else:
            print(f"not writing {args.readme}: this run measured no GPU", file=sys.stderr)
    failed = [
        r
        for r in rows
        if r["benchmark"] != "gpu_speed"
        and (judge(r["value"], r.get("target", "")) == "no" or str(r.get("notes", "")).startswith("failed"))
    ]
    for r in failed:
        print(f"check failed: {r['case']}: {r['notes']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
