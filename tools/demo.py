"""The main job, what ``make demo`` runs: train RL-controlled editing on synthetic scenes, then enhance photos.

    python tools/demo.py [--minutes 3] [--steps N] [--images 6] [--size 1024x768] [--out outputs/demo]

1. Trains ``recipes/demo_synthetic.yaml`` (RL editing of ``rl_edit.yaml`` on the procedural ``synthetic`` dataset)
   on the CPU for at most ``--minutes`` (``train.max_minutes``), tracked in MLflow (``sqlite:///mlflow.db`` in the
   working directory unless MLFLOW_TRACKING_URI says otherwise).
2. Renders a handful of new under-exposed synthetic scenes (not in the training set) at full resolution and
   enhances them with the trained model loaded back from the MLflow run (the agent looks at a 64 x 64 thumbnail;
   its slider values are applied at full resolution and written to a JSON sidecar per image), and with the
   default pretrained model shipped in the package (``zoo/pretrained/``, trained on real photos).
3. Prints where the outputs, the checkpoint and the MLflow run are, and the command that opens the MLflow UI.

Needs no network and no file outside the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size is WIDTHxHEIGHT (e.g. 1024x768), got {text!r}") from None
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError("--size must be at least 64x64")
    return w, h


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "demo_synthetic.yaml")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time budget (train.max_minutes)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    parser.add_argument("--images", type=int, default=6, help="synthetic photos to enhance")
    parser.add_argument("--size", type=_size, default=(1024, 768), help="their size, WIDTHxHEIGHT")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override k=v")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    import logging

    import numpy as np
    from rich.console import Console

    from zoo.data.synthetic import SyntheticScenes
    from zoo.errors import ZooError
    from zoo.recipe import load_recipe
    from zoo.train.base import train

    console = Console(stderr=True, highlight=False)
    logger = logging.getLogger("zoo.train")
    logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.setLevel(logging.INFO)

    overrides = [f"train.max_minutes={args.minutes}", f"train.device={args.device}", *args.overrides]
    if args.steps:
        overrides.append(f"train.steps={args.steps}")
    try:
        recipe = load_recipe(args.recipe, overrides)
        console.print(
            f"[bold]1/3 training[/bold] {recipe.name} ({recipe.train.trainer} trainer, data {recipe.data['name']}) for "
            f"at most {recipe.train.steps} steps / {args.minutes:g} min on {args.device}"
        )
        t0 = time.perf_counter()
        result = train(recipe, quiet=args.quiet)
        train_s = time.perf_counter() - t0

        # new scenes (indices past the training set) at full resolution
        data = recipe.data
        scenes = SyntheticScenes(size=int(data.get("size", 256)), seed=int(data.get("seed", 0)))
        inputs = args.out / "inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        from PIL import Image

        w, h = args.size
        for k in range(args.images):
            img = scenes.source_image(scenes.size + k, height=h, width=w)
            Image.fromarray((img * 255.0 + 0.5).astype(np.uint8)).save(inputs / f"scene_{k:02d}.png")
        console.print(f"[bold]2/3 enhancing[/bold] {args.images} new {w} x {h} synthetic photos")
        from zoo.inference import enhance_files, load_model

        if result.run_id:
            model = load_model(run_id=result.run_id, device=args.device, tracking_uri=result.tracking_uri)
        else:
            model = load_model(checkpoint=result.checkpoint, device=args.device)
        enhanced = args.out / "enhanced"
        report = enhance_files(model.generator, [inputs], enhanced, source=model.source, progress=not args.quiet)
        # the same photos with the model shipped in the package (what `zoo enhance photos/ -o out/` uses)
        from zoo.pretrained import DEFAULT

        shipped = load_model(pretrained=DEFAULT, device=args.device)
        by_pretrained = args.out / "pretrained"
        pre_report = enhance_files(
            shipped.generator, [inputs], by_pretrained, source=shipped.source, progress=not args.quiet
        )
    except ZooError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}")
        return 2

    def luma(path: Path) -> float:
        a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        return float((0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]).mean())

    console.print("[bold]3/3 results[/bold] (mean luma: input -> the model trained now | the shipped model)")
    shipped_out = dict(zip(pre_report.inputs, pre_report.outputs, strict=True))
    for src, dst in zip(report.inputs, report.outputs, strict=True):
        sidecar = dst.with_suffix(".json")
        sliders = ""
        if sidecar.is_file():
            values = json.loads(sidecar.read_text()).get("params", {})
            if isinstance(values, dict):
                top = sorted(values.items(), key=lambda kv: -abs(float(kv[1])))[:3]
                sliders = "  " + ", ".join(f"{k} {float(v):+.2f}" for k, v in top)
        other = f" | {luma(shipped_out[src]):.3f}" if src in shipped_out else ""
        console.print(f"  {src.name}: mean luma {luma(src):.3f} -> {luma(dst):.3f}{other}{sliders}")
    for path, why in report.skipped + pre_report.skipped:
        console.print(f"  [yellow]skipped[/yellow] {path}: {why}")

    lines = [
        "",
        f"Trained {result.steps} steps in {train_s / 60:.1f} min; "
        f"enhanced {len(report.outputs)} images in {report.seconds:.1f} s.",
        f"  inputs:        {inputs.resolve()}",
        f"  enhanced:      {enhanced.resolve()}  (a .json sidecar per image holds the slider values)",
        f"  pretrained:    {by_pretrained.resolve()}  (the same photos with {shipped.source}; zoo list pretrained)",
        f"  run folder:    {Path(result.run_dir).resolve() if result.run_dir else '-'}",
        f"  checkpoint:    {Path(result.checkpoint).resolve() if result.checkpoint else '-'}",
    ]
    if result.run_id:
        lines += [
            f"  MLflow run:    {result.run_id} (experiment {result.experiment!r}) in {result.tracking_uri}",
            f"  open the UI:   mlflow ui --backend-store-uri {result.tracking_uri}",
            f"  enhance more:  zoo enhance --run {result.run_id} YOUR_PHOTOS... --out DIR",
        ]
    print("\n".join(lines))
    return 0 if report.outputs else 1


if __name__ == "__main__":
    raise SystemExit(main())
