"""Every adversarial recipe side by side, on the same data and the same wall-clock budget: docs/RESULTS.md.

    python tools/study.py --minutes 10                 # the committed study: >= 10 min per recipe, 2 CPU cores
    python tools/study.py --minutes 10 --recipes rl_edit,enlightengan_cpu
    python tools/study.py --minutes 10 --threads 1 --parallel 2   # two recipes at a time, one core each
    python tools/study.py --list                       # which recipes, with which overrides

What it does:

1. **Recipes**: every adversarial recipe in ``recipes/`` (a ``model.discriminators`` block, or an old-layout
   ``critic``) except the official ``enlightengan`` (320 px crops, batch 32, VGG16: a handful of steps on a CPU),
   which is replaced by ``enlightengan_cpu`` (the same recipe sized for a CPU, see :data:`CPU_VARIANTS`), and the
   synthetic-data demo. ``rl_edit`` keeps the paper's settings.
2. **Data, identical for all**: ``--set data.source=<shared>/data/lowlight/SICE_dark`` and ``--set
   data.target=[BSDS500, SunHays80, Urban100]``; nothing is trained on DICM, CBSD68 or McMaster.
3. **Budget**: ``--set train.max_minutes=M`` for every recipe (the recipe's own step count stays; on a CPU the
   budget ends every run first), ``OMP_NUM_THREADS=--threads``.
4. **The self-feature-preserving term**: no VGG weights are available offline here, so every
   ``self_feature_preserving`` loss gets ``pretrained: false``: a VGG16 with random (He-initialised) weights,
   seeded by the recipe's seed. The page says so next to the table.
5. **Evaluation** of each trained model, the three classical baselines and the input: all 64 DICM photos (mean
   grayscale NIQE, mean brightness, colourfulness, share of photos whose NIQE improves on the input's) and CBSD68 +
   McMaster darkened with ``zoo eval``'s seeded synthetic darkening (PSNR, SSIM against the originals).
6. **Tracking**: one MLflow experiment (``--experiment``, default ``zoo-study``) with a parent run; every training
   run and every evaluation run is its child (tag ``mlflow.parentRunId``), so the UI groups and compares them.
7. **Output**: ``docs/RESULTS.md`` (the table, budget, commit, commands, plain statements where a recipe is worse
   than the input or a baseline with the likely reason), ``docs/results/curves.png`` (reward or losses against
   time, one panel per recipe) and ``docs/results/grid_<recipe>.png`` (before/after on four DICM photos).

The full study takes (number of recipes) x (budget + a few minutes of evaluation); it is not part of the tests
(tests/test_study.py runs it with a budget of seconds on tiny folders).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXCLUDED = {"enlightengan": "replaced by enlightengan_cpu", "demo_synthetic": "synthetic-data demo"}
# recipe -> (base recipe file, overrides): variants the study adds
CPU_VARIANTS: dict[str, tuple[str, list[str]]] = {
    "enlightengan_cpu": (
        "enlightengan.yaml",
        [
            "name=enlightengan_cpu",
            "model.generator.base_channels=16",  # 2.2 M parameters instead of 8.6 M
            "data.crop_size=128",
            "model.discriminators.global.network.n_layers=4",  # 128 px crops: a 7 x 7 score map
            "train.batch_size=8",
            "train.amp=false",
        ],
    ),
}
BASELINES = ("histogram_equalization", "clahe", "gamma")
TARGETS = ("BSDS500", "SunHays80", "Urban100")
FULLREF = ("CBSD68", "McMaster")


@dataclasses.dataclass
class Entry:
    """One row of the study: a recipe run, a baseline, or the input."""

    label: str
    kind: str  # "recipe", "baseline", "input"
    recipe_file: str | None = None
    overrides: list[str] = dataclasses.field(default_factory=list)
    command: str = ""
    run_id: str | None = None
    checkpoint: str | None = None
    steps: int | None = None
    recipe_steps: int | None = None
    train_seconds: float | None = None
    error: str | None = None
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    grid: str | None = None
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- recipes


def _raw(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _resolved(path: Path, overrides: Sequence[str] = ()) -> dict:
    from zoo.recipe import load_recipe

    return load_recipe(path, list(overrides)).to_dict()


def is_adversarial(raw: dict) -> bool:
    model = raw.get("model") or {}
    return bool(model.get("discriminators") or model.get("critic"))


def default_recipes(recipes_dir: Path = ROOT / "recipes") -> list[str]:
    """Every adversarial recipe (resolved through ``base:``) plus the CPU variants, minus the exclusions."""
    names = []
    for path in sorted(recipes_dir.glob("*.yaml")):
        name = path.stem
        if name in EXCLUDED:
            continue
        try:
            raw = _resolved(path)
        except Exception:  # a recipe that does not load is reported when it is run, not listed silently
            raw = _raw(path)
        if is_adversarial(raw):
            names.append(name)
    return names + sorted(CPU_VARIANTS)


def sfp_overrides(raw: dict) -> list[str]:
    """``pretrained=false`` for every self-feature-preserving loss of a resolved recipe (no VGG weights here)."""
    out = []
    losses = (raw.get("model") or {}).get("losses") or {}
    for key, term in losses.items():
        loss = term.get("loss") if isinstance(term, dict) else None
        if isinstance(loss, dict) and loss.get("name") == "self_feature_preserving" and loss.get("pretrained"):
            out.append(f"model.losses.{key}.loss.pretrained=false")
    return out


def recipe_plan(name: str, args: argparse.Namespace, recipes_dir: Path = ROOT / "recipes") -> tuple[Path, list[str]]:
    """The recipe file and the overrides the study trains ``name`` with."""
    if name in CPU_VARIANTS:
        base, extra = CPU_VARIANTS[name]
        path, overrides = recipes_dir / base, list(extra)
    else:
        path, overrides = recipes_dir / f"{name}.yaml", [f"name={name}"]
    if not path.is_file():
        known = ", ".join(default_recipes(recipes_dir))
        raise SystemExit(f"study: no recipe {name!r} ({path} does not exist). Known: {known}.")
    target = "[" + ",".join(str(t) for t in args.target) + "]"
    overrides += [
        f"data.source={args.source}",
        f"data.target={target}",
        f"train.max_minutes={args.minutes}",
        f"train.device={args.device}",
        f"train.out_dir={args.work / 'runs'}",
        "tracking.system_metrics=false",
        *args.extra_set,
    ]
    overrides += sfp_overrides(_resolved(path, overrides))
    return path, overrides


# ----------------------------------------------------------------------------------------------- training


def train_recipe(entry: Entry, args: argparse.Namespace, parent: str) -> None:
    """Train one recipe in a subprocess (``zoo train``), then tag its run as a child of the study's parent run."""
    cmd = [sys.executable, "-m", "zoo", "train", entry.recipe_file]
    for item in entry.overrides:
        cmd += ["--set", item]
    cmd += ["--tracking-uri", args.tracking_uri, "--experiment", args.experiment, "--quiet"]
    shown = ["zoo", "train", _rel(entry.recipe_file)] + [a for o in entry.overrides for a in ("--set", _rel(o))]
    entry.command = f"OMP_NUM_THREADS={args.threads} " + " ".join(shlex.quote(a) for a in shown)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    limit = 60.0 * args.minutes + 600.0  # the budget plus start-up, data loading and the final save
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        entry.error = f"training did not stop within {limit / 60:.0f} min"
        return
    entry.train_seconds = time.perf_counter() - t0
    out = done.stdout + "\n" + done.stderr
    m = re.search(r"MLflow run:\s+([0-9a-f]{32})", out)
    entry.run_id = m.group(1) if m else None
    m = re.search(r"checkpoint:\s+(\S+)", out)
    entry.checkpoint = str(ROOT / m.group(1)) if m and not Path(m.group(1)).is_absolute() else (m and m.group(1))
    m = re.search(r"Trained \S+ for (\d+) steps", out)
    entry.steps = int(m.group(1)) if m else None
    if done.returncode != 0 or entry.checkpoint is None:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        entry.error = (lines[-1] if lines else f"exit code {done.returncode}")[:300]
    if entry.run_id:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(args.tracking_uri)
        for attempt in range(5):  # with --parallel, another run may hold the SQLite store's write lock a moment
            try:
                client.set_tag(entry.run_id, "mlflow.parentRunId", parent)
                client.set_tag(entry.run_id, "zoo.study", args.study_id)
                break
            except Exception:  # noqa: BLE001 - MLflow wraps the lock error in several types
                if attempt == 4:
                    raise
                time.sleep(2.0 * (attempt + 1))


def _rel(text: str) -> str:
    """Paths as a reader would type them: the shared data as ../shared/..., the repository's files relative."""
    text = str(text)
    if "/shared/data/" in text:
        text = re.sub(r"[^\s\[,=]*/shared/data/", "../shared/data/", text)
    return text.replace(str(ROOT) + "/", "")


# ----------------------------------------------------------------------------------------------- evaluation


def evaluate(entry: Entry, generator: Any, metrics: dict, args: argparse.Namespace, input_rows: dict | None) -> Any:
    """Score one model on DICM (no reference) and the darkened full-reference sets; returns the DICM result."""
    from zoo.compare import evaluate_models
    from zoo.eval import DarkeningSpec

    nr = {k: metrics[k] for k in ("niqe", "mean_brightness", "colorfulness")}
    dicm = evaluate_models([(entry.label, generator)], nr, data=[args.dicm], grid_max=4, progress=False)[0]
    means = dicm.means()
    entry.scores.update({"niqe": means["niqe"], "brightness": means["mean_brightness"]})
    entry.scores["colorfulness"] = means["colorfulness"]
    if input_rows is not None:
        pairs = [(input_rows.get(r["image"]), r.get("niqe")) for r in dicm.rows]
        pairs = [(a, b) for a, b in pairs if _finite(a) and _finite(b)]
        entry.scores["niqe_improved"] = sum(b < a for a, b in pairs) / len(pairs) if pairs else math.nan
    fr = {k: metrics[k] for k in ("psnr", "ssim")}
    dark = evaluate_models(
        [(entry.label, generator)], fr, synthetic_dark=args.fullref, spec=DarkeningSpec(seed=args.seed), progress=False
    )
    rows = [r for res in dark for r in res.rows]
    for k in ("psnr", "ssim"):
        vals = [r[k] for r in rows if _finite(r.get(k))]
        entry.scores[k] = sum(vals) / len(vals) if vals else math.nan
    entry.facts["dicm_images"] = len(dicm.rows)
    entry.facts["fullref_images"] = len(rows)
    return dicm


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def log_eval(entry: Entry, args: argparse.Namespace, parent: str, experiment_id: str) -> None:
    """One child evaluation run per row, with the scores as metrics (eval/<metric>)."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(args.tracking_uri)
    tags = {"mlflow.parentRunId": parent, "zoo.kind": "evaluation", "zoo.study": args.study_id}
    tags["zoo.eval_model"] = entry.label
    if entry.run_id:
        tags["zoo.eval_of"] = entry.run_id
    run = client.create_run(experiment_id, run_name=f"eval {entry.label}", tags=tags)
    now = int(time.time() * 1000)
    metrics = [Metric(f"eval/{k}", float(v), now, 0) for k, v in entry.scores.items() if _finite(v)]
    client.log_batch(run.info.run_id, metrics=metrics, tags=[RunTag("zoo.row_kind", entry.kind)])
    if entry.grid:
        client.log_artifact(run.info.run_id, entry.grid, artifact_path="eval")
    client.set_terminated(run.info.run_id)


# ----------------------------------------------------------------------------------------------- outputs


def curves_plot(entries: Sequence[Entry], args: argparse.Namespace, path: Path) -> Path | None:
    """Reward (RL) or generator and discriminator losses (GAN) against wall-clock minutes, one panel per recipe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.tracking import MlflowClient

    trained = [e for e in entries if e.kind == "recipe" and e.run_id]
    if not trained:
        return None
    client = MlflowClient(args.tracking_uri)
    cols = min(3, len(trained))
    rows = math.ceil(len(trained) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, e in zip(axes.flat, trained, strict=False):
        keys = sorted(client.get_run(e.run_id).data.metrics)
        wanted = [k for k in ("reward/mean", "loss/g") if k in keys]
        wanted += [k for k in keys if k.startswith("loss/d_")][:2]
        wanted = wanted or [k for k in keys if k.startswith(("loss/", "reward/"))][:3]
        for k in wanted:
            hist = sorted(client.get_metric_history(e.run_id, k), key=lambda m: m.step)
            if not hist:
                continue
            t0 = hist[0].timestamp
            ax.plot([(m.timestamp - t0) / 60000.0 for m in hist], [m.value for m in hist], label=k, lw=1)
        ax.set_title(f"{e.label} ({e.steps or 0} steps)", fontsize=9)
        ax.set_xlabel("minutes")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(trained) :]:
        ax.axis("off")
    fig.suptitle(f"Training curves, {args.minutes:g} min per recipe", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def statements(entries: Sequence[Entry]) -> list[str]:
    """Plain sentences: where a recipe is worse than the input or a baseline, with the likely reason."""
    inp = next((e for e in entries if e.kind == "input"), None)
    bases = [e for e in entries if e.kind == "baseline" and _finite(e.scores.get("niqe"))]
    out = []
    for e in entries:
        if e.kind != "recipe":
            continue
        if e.error and not _finite(e.scores.get("niqe")):
            out.append(f"**{e.label}** did not produce a model: {e.error}")
            continue
        s = e.scores
        worse = []
        if inp and _finite(s.get("niqe")) and s["niqe"] >= inp.scores["niqe"]:
            worse.append(f"worse than the unenhanced input on DICM NIQE ({s['niqe']:.3f} vs {inp.scores['niqe']:.3f})")
        better = [b for b in bases if _finite(s.get("niqe")) and b.scores["niqe"] < s["niqe"]]
        if better:
            names = ", ".join(f"{b.label} ({b.scores['niqe']:.3f})" for b in better)
            worse.append(f"worse on DICM NIQE ({s['niqe']:.3f}) than {names}")
        if inp and _finite(s.get("psnr")) and s["psnr"] < inp.scores.get("psnr", -math.inf):
            worse.append(f"below the darkened input's PSNR ({s['psnr']:.2f} vs {inp.scores['psnr']:.2f} dB)")
        better = [b for b in bases if _finite(s.get("psnr")) and b.scores.get("psnr", -math.inf) > s["psnr"]]
        if better:
            names = ", ".join(f"{b.label} ({b.scores['psnr']:.2f} dB)" for b in better)
            worse.append(f"below {names} on PSNR ({s['psnr']:.2f} dB)")
        if not worse:
            out.append(
                f"**{e.label}** beats the input and every baseline on DICM NIQE ({s['niqe']:.3f}) and on PSNR "
                f"({s['psnr']:.2f} dB)."
            )
            continue
        reasons = []
        if e.steps is not None and e.recipe_steps and e.steps < e.recipe_steps:
            reasons.append(f"it ran {e.steps} of its {e.recipe_steps} steps in the budget")
        b = s.get("brightness")
        if _finite(b) and b < 0.35:
            reasons.append(f"it leaves the photos dark (mean brightness {b:.3f})")
        elif _finite(b) and b > 0.6:
            reasons.append(f"it over-brightens (mean brightness {b:.3f})")
        if inp and _finite(s.get("colorfulness")) and s["colorfulness"] < inp.scores["colorfulness"]:
            reasons.append(
                f"it washes colour out (colourfulness {s['colorfulness']:.1f} vs the input's "
                f"{inp.scores['colorfulness']:.1f})"
            )
        if e.facts.get("random_sfp"):
            reasons.append("its self-feature-preserving term compares random-init VGG16 features (no VGG weights)")
        why = "; ".join(reasons) if reasons else "no single cause stands out in these numbers"
        out.append(f"**{e.label}** is {'; '.join(worse)}. Likely reason: {why}.")
    return out


def _fmt(v: Any, spec: str) -> str:
    return format(v, spec) if _finite(v) else "-"


def write_results(entries: Sequence[Entry], args: argparse.Namespace, curves: Path | None, commit: str) -> Path:
    out = args.out
    rel = lambda p: os.path.relpath(p, out.parent)  # noqa: E731
    lines = [
        "# Results: every recipe side by side",
        "",
        f"Generated by `tools/study.py` on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC at commit "
        f"`{commit}`. Budget: **{args.minutes:g} min of training per recipe** on the CPU "
        f"(`OMP_NUM_THREADS={args.threads}`, `train.max_minutes`"
        + (
            f"; {args.parallel} recipes trained at a time on this {os.cpu_count()}-core machine"
            if args.parallel > 1
            else ""
        )
        + "), identical data for every recipe:",
        "",
        f"- source: `{_rel(args.source)}`; target: " + ", ".join(f"`{_rel(t)}`" for t in args.target) + ";",
        f"- evaluation: all {entries[0].facts.get('dicm_images', '?')} photos of `{_rel(args.dicm)}` (mean "
        "grayscale NIQE with the standard pristine model, mean brightness, colourfulness, share of photos whose NIQE "
        "improves on the input's) and " + " + ".join(f"`{_rel(f)}`" for f in args.fullref) + " "
        f"({entries[0].facts.get('fullref_images', '?')} photos) darkened by `zoo eval`'s seeded synthetic "
        f"darkening (seed {args.seed}), scored with PSNR and SSIM against the originals;",
        "- nothing is trained on the evaluation photos.",
        "",
        "**Self-feature-preserving term**: no pretrained VGG weights are available offline on this machine, so every "
        "`self_feature_preserving` loss ran with `pretrained: false`: timm's VGG16 architecture (the paper's "
        "layer) with random He-initialised weights seeded by the recipe's seed. It is a fixed random feature "
        "extractor, not the paper's perceptual loss.",
        "",
        "| model | kind | steps in budget | DICM NIQE ↓ | brightness | colourfulness | NIQE improved | "
        "PSNR ↑ (dB) | SSIM ↑ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        s = e.scores
        steps = "-" if e.kind != "recipe" else (f"{e.steps}" if e.steps is not None else "failed")
        if e.kind == "recipe" and e.recipe_steps:
            steps += f" / {e.recipe_steps}"
        lines.append(
            f"| {e.label} | {e.kind} | {steps} | {_fmt(s.get('niqe'), '.3f')} | {_fmt(s.get('brightness'), '.3f')} | "
            f"{_fmt(s.get('colorfulness'), '.1f')} | {_fmt(s.get('niqe_improved'), '.0%')} | "
            f"{_fmt(s.get('psnr'), '.2f')} | {_fmt(s.get('ssim'), '.3f')} |"
        )
    lines += ["", "## What the table says", ""]
    lines += [f"- {t}" for t in statements(entries)]
    if curves is not None:
        lines += ["", "## Training curves", "", f"![training curves]({rel(curves)})"]
    grids = [e for e in entries if e.grid]
    if grids:
        lines += ["", "## Before / after (first four DICM photos: input | output)", ""]
        for e in grids:
            lines += [f"**{e.label}**", "", f"![{e.label}]({rel(Path(e.grid))})", ""]
    lines += [
        "",
        "## Commands",
        "",
        "```bash",
        f"python tools/study.py {' '.join(shlex.quote(_rel(a)) for a in args.argv)}".rstrip(),
        "# which ran, for each recipe:",
        *[e.command for e in entries if e.command],
        "# and evaluated every model (and the baselines) as:",
        f"zoo eval --model run:RUN_ID --model baseline:histogram_equalization --model baseline:clahe "
        f"--model baseline:gamma --data {_rel(args.dicm)} "
        + " ".join(f"--synthetic-dark {_rel(f)}" for f in args.fullref)
        + f" --seed {args.seed} --baseline",
        "```",
        "",
        f"MLflow: experiment `{args.experiment}` in `{_rel(args.tracking_uri)}`, parent run "
        f"`{args.parent_run}`; every training and evaluation run is its child (`mlflow ui --backend-store-uri "
        f"{_rel(args.tracking_uri)}`).",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


# ----------------------------------------------------------------------------------------------- main


def _commit() -> str:
    from zoo.train.tracking import git_commit

    commit = git_commit() or "unknown"
    try:
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        if dirty.stdout.strip():
            commit += " (with uncommitted changes)"
    except (OSError, subprocess.SubprocessError):
        pass
    return commit


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    shared = ROOT.parent / "shared" / "data"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per recipe (wall clock)")
    p.add_argument("--recipes", default=None, help="comma-separated recipe names (default: see --list)")
    p.add_argument("--list", action="store_true", help="print the recipes and their overrides, then exit")
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS for training")
    p.add_argument("--parallel", type=int, default=1, help="recipes trained at the same time (each --threads)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--source", type=Path, default=shared / "lowlight" / "SICE_dark")
    p.add_argument("--target", type=Path, nargs="+", default=[shared / "normal" / t for t in TARGETS])
    p.add_argument("--dicm", type=Path, default=shared / "lowlight" / "DICM")
    p.add_argument("--fullref", type=Path, nargs="+", default=[shared / "normal" / f for f in FULLREF])
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic darkening")
    p.add_argument("--work", type=Path, default=ROOT / "outputs" / "study", help="run folders and the MLflow store")
    p.add_argument("--tracking-uri", default=None, help="default: sqlite:///<work>/mlflow.db")
    p.add_argument("--experiment", default="zoo-study")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "RESULTS.md")
    p.add_argument("--figures", type=Path, default=None, help="default: <out folder>/results")
    p.add_argument("--set", dest="extra_set", action="append", default=[], help="an override for every recipe")
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    args.work = args.work.resolve()
    args.tracking_uri = args.tracking_uri or f"sqlite:///{args.work / 'mlflow.db'}"
    args.figures = args.figures or args.out.parent / "results"
    if args.parallel < 1 or args.threads < 1:
        raise SystemExit(f"study: --parallel and --threads take 1 or more, got {args.parallel} and {args.threads}.")
    for name in ("source", "dicm"):
        if not getattr(args, name).is_dir():
            raise SystemExit(f"study: --{name} {getattr(args, name)} is not a folder.")
    for folder in [*args.target, *args.fullref]:
        if not folder.is_dir():
            raise SystemExit(f"study: {folder} is not a folder.")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.recipes.split(",")] if args.recipes else default_recipes()
    plans = {n: recipe_plan(n, args) for n in names}
    if args.list:
        for n, (path, overrides) in plans.items():
            print(f"{n}: {_rel(str(path))}\n    " + "\n    ".join(_rel(o) for o in overrides))
        return 0
    import torch
    from mlflow.tracking import MlflowClient

    from zoo.eval import build_metrics
    from zoo.inference import load_model
    from zoo.tracking import check_uri

    args.work.mkdir(parents=True, exist_ok=True)
    check_uri(args.tracking_uri)
    client = MlflowClient(args.tracking_uri)
    exp = client.get_experiment_by_name(args.experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(args.experiment)
    args.study_id = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    commit = _commit()
    parent = client.create_run(
        exp_id,
        run_name=f"study {args.study_id}",
        tags={"zoo.kind": "study", "zoo.study": args.study_id, "zoo.git_commit": commit},
    ).info.run_id
    args.parent_run = parent
    client.log_param(parent, "minutes_per_recipe", args.minutes)
    client.log_param(parent, "recipes", ",".join(names))
    client.log_param(parent, "threads", args.threads)
    client.log_param(parent, "parallel", args.parallel)

    entries: list[Entry] = [Entry("input", "input")]
    entries += [Entry(b, "baseline") for b in BASELINES]
    for n, (path, overrides) in plans.items():
        e = Entry(n, "recipe", recipe_file=str(path), overrides=overrides)
        resolved = _resolved(path, overrides)
        e.recipe_steps = int((resolved.get("train") or {}).get("steps") or 0) or None
        e.facts["random_sfp"] = bool(sfp_overrides(_resolved(path, [o for o in overrides if "pretrained" not in o])))
        entries.append(e)

    def train(e: Entry) -> None:
        print(f"[study] training {e.label} for {args.minutes:g} min", file=sys.stderr, flush=True)
        train_recipe(e, args, parent)

    # --parallel N trains N recipes at once (each with --threads threads): the same wall-clock budget for every
    # recipe, on a share of the cores that the page states.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        list(pool.map(train, [e for e in entries if e.kind == "recipe"]))

    torch.set_num_threads(max(1, args.threads))
    metrics = build_metrics(["niqe", "mean_brightness", "colorfulness", "psnr", "ssim"])
    input_rows = None
    args.figures.mkdir(parents=True, exist_ok=True)
    for e in entries:
        print(f"[study] evaluating {e.label}", file=sys.stderr, flush=True)
        if e.kind == "input":
            from torch import nn

            class _Identity(nn.Module):
                def forward(self, x):
                    return {"image": x}

            gen = _Identity()
        elif e.kind == "baseline":
            gen = load_model(generator=e.label, device="cpu").generator
        elif e.checkpoint and Path(e.checkpoint).exists():
            gen = load_model(checkpoint=e.checkpoint, device="cpu").generator
        else:
            continue
        try:
            dicm = evaluate(e, gen, metrics, args, input_rows)
        except Exception as exc:  # one model failing to evaluate is a row that says so, not a lost study
            e.error = f"evaluation failed: {exc}"
            continue
        if e.kind == "input":
            input_rows = {r["image"]: r.get("niqe") for r in dicm.rows}
        elif dicm.grid:
            from zoo.eval import write_grid

            e.grid = str(write_grid([dicm], args.figures / f"grid_{e.label}.png"))
        log_eval(e, args, parent, exp_id)
    curves = curves_plot(entries, args, args.figures / "curves.png")
    path = write_results(entries, args, curves, commit)
    if curves:
        client.log_artifact(parent, str(curves), artifact_path="study")
    client.log_artifact(parent, str(path), artifact_path="study")
    client.set_terminated(parent)
    print(f"wrote {path} (MLflow parent run {parent} in {args.tracking_uri})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
