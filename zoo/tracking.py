"""The read side of MLflow tracking: where the store is, whether it can be used, and run lookups.

``zoo runs``, ``--run`` (enhance, eval, export) and ``--resume`` use these; they need no trainer. Training-time
logging (the :class:`zoo.train.tracking.Tracker`) builds on them.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from zoo.errors import TrainingError

DEFAULT_URI = "sqlite:///mlflow.db"


def resolve_uri(cli_uri: str | None = None, recipe_uri: str | None = None) -> tuple[str, str]:
    """The tracking URI and where it came from (``cli``, ``env``, ``recipe`` or ``default``)."""
    if cli_uri:
        return cli_uri, "cli"
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env, "env"
    if recipe_uri:
        return recipe_uri, "recipe"
    return DEFAULT_URI, "default"


def check_uri(uri: str, timeout: float = 5.0) -> None:
    """Raise a :class:`TrainingError` sentence when the tracking store at ``uri`` cannot be used."""
    hint = (
        "Start the server, point --tracking-uri / MLFLOW_TRACKING_URI / tracking.uri at one that runs, "
        "or turn tracking off with --set tracking.enabled=false."
    )
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 (a URL the user configured)
                pass
        except urllib.error.HTTPError:
            return  # the server answered (perhaps an older one without /health): reachable
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrainingError(f"The MLflow tracking server at {uri} cannot be reached ({reason}). {hint}") from None
        return
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        folder = db.parent if str(db.parent) else Path(".")
        if not folder.is_dir():
            raise TrainingError(f"The MLflow store {uri} cannot be created: folder {folder} does not exist. {hint}")
        if not os.access(folder, os.W_OK):
            raise TrainingError(f"The MLflow store {uri} cannot be written: folder {folder} is read-only. {hint}")


def checkpoint_for_run(run_id: str, uri: str | None = None) -> Path:
    """The newest checkpoint of ``run_id``: its local file if still there, else the logged artifact."""
    from mlflow.tracking import MlflowClient

    uri, _ = resolve_uri(uri)
    check_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except Exception:
        raise TrainingError(
            f"MLflow run {run_id} is not in the store {uri}. 'zoo runs' lists the runs there; "
            "--tracking-uri or MLFLOW_TRACKING_URI selects another store."
        ) from None
    local = run.data.tags.get("zoo.checkpoint")
    if local and Path(local).is_file():
        return Path(local)
    import mlflow.artifacts

    run_dir = run.data.tags.get("zoo.run_dir")
    dst = Path(run_dir) if run_dir else Path("runs") / "downloaded" / run_id
    try:
        dst.mkdir(parents=True, exist_ok=True)
        got = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"checkpoints/{'last.pt'}", dst_path=str(dst), tracking_uri=uri
        )
    except Exception as exc:
        raise TrainingError(f"MLflow run {run_id} has no checkpoint (neither {local} nor an artifact): {exc}") from None
    return Path(got)


def list_runs(uri: str | None = None, experiment: str | None = None, max_results: int = 20) -> list[dict[str, Any]]:
    """Recent runs of the store (newest first): id, experiment, recipe, status, start, step and last metrics."""
    from mlflow.tracking import MlflowClient

    resolved, _ = resolve_uri(uri)
    check_uri(resolved)
    client = MlflowClient(tracking_uri=resolved)
    if experiment:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            from zoo.errors import DataError, available, suggest

            raise DataError(
                f"No experiment {experiment!r} in {resolved}.{suggest(experiment, names)} {available(names)}"
            )
        exps = [exp]
    else:
        exps = client.search_experiments()
    if not exps:
        return []
    by_id = {e.experiment_id: e.name for e in exps}
    runs = client.search_runs(list(by_id), max_results=max_results, order_by=["attributes.start_time DESC"])
    out = []
    for run in runs:
        metrics = {k: v for k, v in run.data.metrics.items() if not k.startswith(("system/", "perf/", "lr/"))}
        out.append(
            {
                "run_id": run.info.run_id,
                "experiment": by_id.get(run.info.experiment_id, run.info.experiment_id),
                "recipe": run.data.tags.get("zoo.recipe", run.info.run_name or ""),
                "status": run.info.status,
                "start_time": run.info.start_time,
                "step": run.data.tags.get("zoo.checkpoint_step", ""),
                "metrics": metrics,
            }
        )
    return out
