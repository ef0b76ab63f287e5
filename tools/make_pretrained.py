"""Ship a trained checkpoint as a pretrained model: zoo/pretrained/<name>/ with weights, recipe and manifest.

    python tools/make_pretrained.py CHECKPOINT --name NAME --command "zoo train ..." [--summary TEXT]
        [--dicm ../shared/data/lowlight/DICM] [--no-eval]

1. Refuses a checkpoint whose recipe trained on an evaluation set (DICM, CBSD68, McMaster): scores of a shipped
   model are on photos it has never seen.
2. Writes ``generator.pt`` (weights only: generator block + state dict, a few MB at most), ``recipe.yaml`` (the
   resolved recipe) and ``manifest.yaml`` (recipe, command, commit, training time from the MLflow run, data).
3. Scores it with ``zoo eval --model pretrained:NAME --data DICM --baseline`` (mean grayscale NIQE, brightness,
   colourfulness on all 64 photos) and records the scores and the eval command in the manifest.
4. Regenerates registry.yaml (its ``pretrained`` section lists the shipped models).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVALUATION_SETS = ("DICM", "CBSD68", "McMaster")
MAX_BYTES = 8 * 2**20


def _data_folders(recipe: dict) -> list[str]:
    data = recipe.get("data") or {}
    out = []
    for key in ("source", "target", "root", "path", "folders"):
        value = data.get(key)
        values = value if isinstance(value, list) else [value]
        out += [str(v) for v in values if v]
    return out


def _portable(folder: str) -> str:
    """``/any/where/shared/data/x`` -> ``../shared/data/x`` (the layout every checkout has)."""
    marker = "/shared/data/"
    return "../shared/data/" + folder.split(marker, 1)[1] if marker in folder else folder


def _portable_all(value):
    if isinstance(value, str):
        return _portable(value)
    if isinstance(value, list):
        return [_portable_all(v) for v in value]
    if isinstance(value, dict):
        return {k: _portable_all(v) for k, v in value.items()}
    return value


def check_data_rule(recipe: dict) -> list[str]:
    """The recipe's data folders; raises SystemExit when one is an evaluation set."""
    folders = _data_folders(recipe)
    bad = [f for f in folders if any(Path(f).name == s or f"/{s}/" in f"{f}/" for s in EVALUATION_SETS)]
    if bad:
        raise SystemExit(f"refused: the checkpoint was trained on evaluation photos ({', '.join(bad)}).")
    return folders


def _training_time(state: dict) -> dict:
    run_id, uri = state.get("mlflow_run_id"), state.get("tracking_uri")
    out: dict = {"steps": state.get("step"), "mlflow_run_id": run_id}
    if run_id and uri:
        try:
            from mlflow.tracking import MlflowClient

            run = MlflowClient(uri).get_run(run_id)
            if run.info.end_time and run.info.start_time:
                out["seconds"] = round((run.info.end_time - run.info.start_time) / 1000.0, 1)
            out["device"] = run.data.tags.get("zoo.device")
            out["threads"] = run.data.params.get("train.threads")
        except Exception as exc:  # the manifest says what is unknown rather than failing
            out["note"] = f"MLflow run not readable: {exc}"
    return {k: v for k, v in out.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--command", required=True, help="the exact training command (recorded)")
    parser.add_argument("--summary", default="")
    parser.add_argument("--recipe-file", default=None, help="the recipe file trained (recorded)")
    parser.add_argument("--commit", default=None, help="the commit the model was trained at (default: HEAD)")
    parser.add_argument("--notes", default=None, help="anything a reader should know (recorded)")
    parser.add_argument("--dicm", type=Path, default=ROOT.parent / "shared" / "data" / "lowlight" / "DICM")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "zoo" / "pretrained")
    args = parser.parse_args(argv)

    import yaml

    from zoo.checkpoint_io import checkpoint_in, load_checkpoint
    from zoo.pretrained import MANIFEST, RECIPE, WEIGHTS, sha256
    from zoo.train.tracking import git_commit
    from zoo.weights import weights_from_checkpoint

    path = checkpoint_in(args.checkpoint) or args.checkpoint
    state = load_checkpoint(path)
    recipe = state.get("recipe") or {}
    folders = check_data_rule(recipe)
    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    weights = weights_from_checkpoint(path, folder / WEIGHTS, meta={"pretrained": args.name})
    size = weights.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"refused: {weights} is {size / 2**20:.1f} MB; a shipped model is a few MB at most.")
    shown = _portable_all(recipe)
    (folder / RECIPE).write_text(yaml.safe_dump(shown, sort_keys=False, width=120), encoding="utf-8")
    block = (recipe.get("model") or {}).get("generator") or {}
    manifest = {
        "name": args.name,
        "summary": args.summary or f"{recipe.get('name')} trained on SICE_dark vs BSDS500 + SunHays80 + Urban100",
        "generator": block.get("name"),
        "recipe": {"name": recipe.get("name"), "file": args.recipe_file, "resolved": RECIPE},
        "command": args.command,
        "commit": args.commit or git_commit(),
        **({"notes": args.notes} if args.notes else {}),
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "training": _training_time(state),
        "data": {"folders": [_portable(f) for f in folders], "never_trained_on": list(EVALUATION_SETS)},
        "weights": {"file": WEIGHTS, "format": "enhance-zoo-weights", "bytes": size, "sha256": sha256(weights)},
        "scores": {},
    }
    (folder / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False, width=120), encoding="utf-8")
    if not args.no_eval:
        with tempfile.TemporaryDirectory() as tmp:
            out_json = Path(tmp) / "scores.json"
            cmd = [
                "zoo",
                "eval",
                "--model",
                f"pretrained:{args.name}",
                "--data",
                str(args.dicm),
                "--baseline",
                "--metrics",
                "niqe,mean_brightness,colorfulness",
                "--json",
                str(out_json),
                "--no-track",
                "--quiet",
            ]
            exe = [sys.executable, "-m", "zoo", *cmd[1:]]
            done = subprocess.run(exe, cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"zoo eval failed:\n{done.stderr[-2000:]}")
            sets = json.loads(out_json.read_text())["sets"]
        for s in sets:
            key = "DICM_input" if s["set"].endswith("(input)") else "DICM"
            manifest["scores"][key] = {
                m: round(v["mean"], 4) for m, v in s["metrics"].items() if isinstance(v["mean"], (int, float))
            }
            manifest["scores"][key]["images"] = len(s["images"])
        improved = _share_improved(sets)
        if improved is not None:
            manifest["scores"]["DICM"]["niqe_improved_share"] = improved
        shown = cmd[: cmd.index("--json")] + ["--no-track"]
        manifest["scores"]["command"] = " ".join(shown).replace(str(args.dicm), "../shared/data/lowlight/DICM")
        manifest["scores"]["niqe"] = "grayscale (MATLAB rgb2gray), 96 x 96 blocks, the standard pristine model"
        (folder / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False, width=120), encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_registry.py")], check=True)
    print(yaml.safe_dump(manifest, sort_keys=False, width=120))
    return 0


def _share_improved(sets: list[dict]) -> float | None:
    out = next((s for s in sets if not s["set"].endswith("(input)")), None)
    inp = next((s for s in sets if s["set"].endswith("(input)")), None)
    if out is None or inp is None:
        return None
    before = {r["image"]: r.get("niqe") for r in inp["images"]}
    pairs = [(before.get(r["image"]), r.get("niqe")) for r in out["images"]]
    pairs = [(a, b) for a, b in pairs if isinstance(a, (int, float)) and isinstance(b, (int, float))]
    return round(sum(b < a for a, b in pairs) / len(pairs), 4) if pairs else None


if __name__ == "__main__":
    raise SystemExit(main())
