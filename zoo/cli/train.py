"""``zoo train`` (one process, or DDP with --nproc / torchrun) and ``zoo runs`` (recent MLflow runs)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

SET_HELP = "Override a recipe value: dotted.key=value (YAML scalar or list). Repeatable."


def train_cmd(
    recipe: Path = typer.Argument(..., help="Recipe file (YAML)."),
    overrides: list[str] = typer.Option(None, "--set", "-s", help=SET_HELP),
    resume: str = typer.Option(None, "--resume", help="Continue a checkpoint file, a run folder or an MLflow run id."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps (default: train.device)."),
    tracking_uri: str = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, tracking.uri, sqlite:///mlflow.db).",
    ),
    experiment: str = typer.Option(None, "--experiment", help="MLflow experiment (default: the recipe's name)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes for DDP on this machine (runs torchrun)."),
    nnodes: str = typer.Option(
        "1", "--nnodes", help="Machines in a multi-node job (torchrun --nnodes; run the same command on each)."
    ),
    rdzv_endpoint: str = typer.Option(
        None, "--rdzv-endpoint", help="Multi-node: HOST:PORT of the rendezvous, the same on every node."
    ),
    rdzv_id: str = typer.Option("zoo", "--rdzv-id", help="Multi-node: a job id shared by every node."),
    node_rank: int = typer.Option(None, "--node-rank", min=0, help="Multi-node: this node's rank (optional)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (messages still go to stderr)."),
    register: str = typer.Option(
        None,
        "--register",
        help="Register the final model in the MLflow Model Registry under NAME (weights-only; load it back with "
        "zoo enhance --model models:/NAME/VERSION).",
    ),
) -> None:
    """Train a recipe: progress on stderr, checkpoints in train.out_dir, everything tracked in MLflow.

    With --nproc N (or under torchrun --nproc_per_node N -m zoo train ...) the run uses PyTorch DDP: gloo on the
    CPU, NCCL on GPUs; rank 0 alone writes checkpoints and talks to MLflow. On one machine the rendezvous listens
    on 127.0.0.1 only. Across machines run the same command on each with --nnodes N --rdzv-endpoint HOST:PORT
    (and a shared MLflow server in --tracking-uri; see docs/training.md).

    Ctrl-C or SIGTERM stops after the current step with a checkpoint (exit status 130 / 143) and prints the
    command that resumes; the run folder is locked while it trains, so a second --resume of it is refused.
    """
    multi_node = rdzv_endpoint is not None or str(nnodes) != "1"
    if (nproc > 1 or multi_node) and "LOCAL_RANK" not in os.environ:
        from zoo.train.distributed import MultiNode, launch

        argv = ["train", str(recipe)]
        for item in overrides or []:
            argv += ["--set", item]
        for flag, value in (
            ("--resume", resume),
            ("--device", device),
            ("--tracking-uri", tracking_uri),
            ("--experiment", experiment),
            ("--register", register),
        ):
            if value:
                argv += [flag, str(value)]
        if quiet:
            argv.append("--quiet")
        nodes = MultiNode(nnodes=str(nnodes), rdzv_endpoint=rdzv_endpoint, rdzv_id=rdzv_id, node_rank=node_rank)
        raise typer.Exit(launch(nproc, argv, nodes if multi_node else None))

    from zoo.recipe import load_recipe
    from zoo.train.base import train
    from zoo.train.distributed import env_info

    info = env_info()
    _configure_logging(quiet=quiet, main=info.is_main)
    rec = load_recipe(recipe, overrides or [])
    if register:
        from zoo.model_registry import check_model_name

        check_model_name(register)
    if register and not rec.tracking.enabled:
        from zoo.errors import RecipeError

        raise RecipeError(
            f"--register {register}: the MLflow Model Registry lives in the tracking store, and tracking is off "
            f"(tracking.enabled=false in {recipe}); turn it on or drop --register."
        )
    result = train(rec, device=device, resume=resume, tracking_uri=tracking_uri, experiment=experiment, quiet=quiet)
    if not info.is_main:
        if result.interrupted:
            raise typer.Exit(_signal_status(result.interrupted))
        return
    if result.interrupted:
        _print_resume(result, recipe, overrides or [], tracking_uri)
        raise typer.Exit(_signal_status(result.interrupted))
    lines = [f"Trained {rec.name} for {result.steps} steps."]
    if result.run_dir is not None:
        lines.append(f"  run folder:  {result.run_dir}")
    if result.checkpoint is not None:
        lines.append(f"  checkpoint:  {result.checkpoint}")
    if result.run_id:
        lines.append(f"  MLflow run:  {result.run_id} (experiment {result.experiment!r}, store {result.tracking_uri})")
        if str(result.tracking_uri).startswith(("http://", "https://")):
            lines.append(f"  browse:      {result.tracking_uri}")
        else:
            lines.append(f"  browse:      mlflow ui --backend-store-uri {result.tracking_uri}")
        lines.append(f"  enhance:     zoo enhance --run {result.run_id} IMAGES... --out DIR")
    if register and result.run_id:
        from zoo.model_registry import register_model

        model_uri = register_model(
            result.run_id, register, tracking_uri=result.tracking_uri, checkpoint=result.checkpoint
        )
        lines.append(f"  registered:  {model_uri} (zoo enhance --model {model_uri} IMAGES... --out DIR)")
    typer.echo("\n".join(lines))


def _signal_status(name: str) -> int:
    import signal

    return 128 + int(getattr(signal, name, signal.SIGTERM))


def _print_resume(result, recipe: Path, overrides: list[str], tracking_uri: str | None) -> None:
    import shlex

    target = result.run_dir if result.run_dir is not None else result.checkpoint
    cmd = ["zoo", "train", str(recipe), *[a for item in overrides for a in ("--set", item)], "--resume", str(target)]
    if tracking_uri:
        cmd += ["--tracking-uri", tracking_uri]
    lines = [f"Stopped by {result.interrupted} at step {result.steps}."]
    if result.checkpoint is not None:
        lines.append(f"  checkpoint:  {result.checkpoint} (step {result.steps})")
    if result.run_id:
        lines.append(f"  MLflow run:  {result.run_id} marked KILLED (store {result.tracking_uri})")
    lines.append(f"  resume:      {shlex.join(cmd)}")
    typer.echo("\n".join(lines))


def runs_cmd(
    experiment: str = typer.Option(None, "--experiment", help="Only this experiment."),
    tracking_uri: str = typer.Option(
        None, "--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."
    ),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs (newest first)."),
) -> None:
    """List recent training runs: id, experiment, recipe, status, last checkpoint step and key metrics."""
    import datetime

    from rich.console import Console
    from rich.table import Table

    from zoo.tracking import list_runs, resolve_uri

    uri, _ = resolve_uri(tracking_uri)
    runs = list_runs(tracking_uri, experiment=experiment, max_results=limit)
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)  # pipes get whole lines
    if not runs:
        console.print(f"No runs in {uri}" + (f" (experiment {experiment!r})" if experiment else "") + ".")
        return
    table = Table(title=f"MLflow runs in {uri}", title_justify="left")
    table.add_column("run id", no_wrap=True, min_width=32)
    for col in ("experiment", "recipe", "status", "started", "step", "metrics"):
        table.add_column(col, overflow="fold")
    for r in runs:
        started = (
            datetime.datetime.fromtimestamp(r["start_time"] / 1000).strftime("%Y-%m-%d %H:%M")
            if r["start_time"]
            else ""
        )
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r["metrics"].items())[:4])
        table.add_row(r["run_id"], r["experiment"], r["recipe"], r["status"], started, str(r["step"]), shown)
    console.print(table)


def _configure_logging(quiet: bool, main: bool) -> None:
    logger = logging.getLogger("zoo.train")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if main and not quiet else logging.WARNING)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("runs")(runs_cmd)
