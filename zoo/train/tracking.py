"""MLflow tracking for training runs (rank 0 only), and the run lookups ``zoo runs`` / ``--run`` / ``--resume`` use.

Where runs go (first that is set): ``--tracking-uri``, ``MLFLOW_TRACKING_URI``, the recipe's ``tracking.uri``, the
checkpoint's store when resuming, else MLflow 3's default local store ``sqlite:///mlflow.db`` in the working
directory (artifacts under ``./mlruns``). The experiment is ``--experiment``, else ``tracking.experiment``, else
the recipe's name. A configured server that cannot be reached stops the run before training starts.

Each run records: the resolved recipe (artifact ``recipe.yaml`` and flattened params), tags (zoo version, git
commit, recipe, trainer, component names, device, world size, run folder, checkpoint path), metrics per logged
step (the trainer's losses, ``lr/*``, ``perf/*``), system metrics (psutil: CPU, memory, disk, network; GPU via
MLflow's monitor when ``nvidia-ml-py`` is installed, plus ``perf/cuda_*`` memory from torch), sample grids
(``samples/step_*.png``), the latest checkpoint (``checkpoints/last.pt``) and the final generator as the
weights-only folder ``model/`` (``generator.pt``: generator block + state dict, no pickle; see
:mod:`zoo.model_registry`), which ``zoo train --register NAME`` puts into the MLflow Model Registry.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import TrainingError
from zoo.tracking import DEFAULT_URI, check_uri, checkpoint_for_run, list_runs, resolve_uri

__all__ = ["DEFAULT_URI", "Tracker", "check_uri", "image_grid", "list_runs", "resolve_uri"]

log = logging.getLogger("zoo.train")
PARAM_VALUE_LIMIT = 6000


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the checkout the zoo package is in (None outside a git checkout)."""
    root = path or Path(__file__).resolve().parent.parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def flat_params(raw: Mapping[str, Any]) -> dict[str, str]:
    """The resolved recipe flattened to dotted keys with string values MLflow accepts."""
    from zoo.recipe import flatten

    out = {}
    for key, value in flatten(raw).items():
        text = str(value)
        out[key] = text if len(text) <= PARAM_VALUE_LIMIT else text[: PARAM_VALUE_LIMIT - 3] + "..."
    return out


def image_grid(images: Mapping[str, Any], pad: int = 2) -> np.ndarray:
    """Lay named image batches out as columns (one row per sample) in an ``H x W x 3`` uint8 array.

    Args:
        images: name -> ``N x 3 x H x W`` tensor in ``[0, 1]``; every batch has the same N, H and W.
        pad: white pixels between tiles.
    """
    import torch

    tensors = [torch.as_tensor(v).detach().float().cpu().clamp(0, 1) for v in images.values()]
    if not tensors:
        raise ValueError("image_grid needs at least one image batch")
    n, _, h, w = tensors[0].shape
    cols = len(tensors)
    grid = torch.ones(3, n * (h + pad) + pad, cols * (w + pad) + pad)
    for c, batch in enumerate(tensors):
        if batch.shape[0] != n or batch.shape[-2:] != (h, w) or batch.shape[1] not in (1, 3):
            raise ValueError(f"image_grid: every batch must be {n} x 3 x {h} x {w}, got {tuple(batch.shape)}")
        for r in range(n):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[:, y : y + h, x : x + w] = batch[r].expand(3, h, w)
    return (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


class Tracker:
    """One run's MLflow connection; every method is a no-op when tracking is off or this is not rank 0."""

    def __init__(self, uri: str, source: str, experiment: str | None, spec: Any, active: bool) -> None:
        self.uri = uri
        self.uri_source = source
        self.experiment = experiment
        self.spec = spec
        self.active = active
        self.run_id: str | None = None
        self._resume_run: str | None = None
        self._monitor: Any = None
        self._started = False
        self.offline_since: int | None = None  # the step at which the store stopped answering
        self.not_logged: dict[str, int] = {}  # what could not be logged since, by kind
        self._offline_reason = ""

    @classmethod
    def for_run(
        cls, recipe: Any, *, cli_uri: str | None = None, cli_experiment: str | None = None, active: bool = True
    ) -> Tracker:
        spec = recipe.tracking
        uri, source = resolve_uri(cli_uri, spec.uri)
        experiment = cli_experiment or spec.experiment or recipe.name
        return cls(uri, source, experiment, spec, active=bool(active and spec.enabled))

    @classmethod
    def lookup(cls, uri: str | None = None) -> Tracker:
        """A tracker used only to look runs up (``zoo runs``, ``--run``, ``load_generator``)."""
        resolved, source = resolve_uri(uri)
        return cls(resolved, source, None, None, active=False)

    def describe(self) -> str:
        if not self.active:
            return "off"
        return f"{self.uri} (experiment {self.experiment!r})"

    # ------------------------------------------------------------------------------------------- set-up

    def adopt(self, state: Mapping[str, Any]) -> None:
        """Continue the run a checkpoint belongs to (same run id; its store unless one was configured)."""
        if not self.active:
            return
        self._resume_run = state.get("mlflow_run_id")
        if self.uri_source == "default" and state.get("tracking_uri"):
            self.uri, self.uri_source = state["tracking_uri"], "checkpoint"

    def check_reachable(self) -> None:
        if self.active:
            check_uri(self.uri)

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        check_uri(self.uri)
        return MlflowClient(tracking_uri=self.uri)

    def start(self, trainer: Any, *, run_dir: Path | None, resumed: bool) -> None:
        """Start (or re-open) the MLflow run and record the recipe, params and tags."""
        if not self.active:
            return
        import mlflow

        if self.uri.startswith(("http://", "https://")):
            # a server that stops answering mid-run must not stall training for minutes per call (MLflow's
            # defaults retry 7 times with exponential backoff): fail fast, then the run goes on without it
            for name, value in (
                ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"),
                ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30"),
            ):
                os.environ.setdefault(name, value)

        mlflow.set_tracking_uri(self.uri)
        recipe = trainer.recipe
        raw = recipe.to_dict()
        if self._resume_run:
            client = mlflow.tracking.MlflowClient(self.uri)
            try:
                run = client.get_run(self._resume_run)
            except Exception:
                raise TrainingError(
                    f"The checkpoint belongs to MLflow run {self._resume_run}, which the store {self.uri} does not "
                    "hold. Pass the store it was logged to with --tracking-uri."
                ) from None
            self.experiment = client.get_experiment(run.info.experiment_id).name
            mlflow.start_run(run_id=self._resume_run, log_system_metrics=False)
        else:
            mlflow.set_experiment(self.experiment)
            mlflow.start_run(run_name=self.spec.run_name, log_system_metrics=False)
        self._started = True
        self.run_id = mlflow.active_run().info.run_id
        if resumed:
            mlflow.set_tag("zoo.resumed_from_step", str(trainer.step))
            mlflow.log_dict(raw, f"recipe_resumed_at_{trainer.step}.yaml")
        else:
            mlflow.log_dict(raw, "recipe.yaml")
            params = flat_params(raw)
            items = list(params.items())
            for i in range(0, len(items), 100):
                mlflow.log_params(dict(items[i : i + 100]))
        mlflow.set_tags(self._tags(trainer, run_dir))
        skipped = getattr(trainer.dataset, "skipped", None)
        if skipped is not None:
            mlflow.log_metric("data/skipped_files", float(len(skipped)), step=trainer.step)
            if skipped:
                mlflow.log_text("\n".join(f"{p}\t{why}" for p, why in skipped), "data/skipped_files.txt")

    def _tags(self, trainer: Any, run_dir: Path | None) -> dict[str, str]:
        import torch

        import zoo

        recipe = trainer.recipe
        tags = {
            "zoo.version": zoo.__version__,
            "zoo.recipe": recipe.name,
            "zoo.recipe_source": str(recipe.source) if recipe.source else "",
            "zoo.trainer": recipe.train.trainer,
            "zoo.device": str(trainer.device),
            "zoo.world_size": str(trainer.dist.world_size),
            "zoo.seed": str(recipe.seed),
            "torch.version": torch.__version__,
        }
        if run_dir is not None:
            tags["zoo.run_dir"] = str(Path(run_dir).resolve())
        commit = git_commit()
        if commit:
            tags["mlflow.source.git.commit"] = commit
            tags["zoo.git_commit"] = commit
        try:
            for dotted, kind, block in recipe.blocks():
                tags[f"component.{dotted}"] = f"{kind}:{block.get('name')}"
        except Exception:  # a recipe object without blocks(): tags are a convenience
            pass
        if torch.cuda.is_available() and trainer.device.type == "cuda":
            tags["zoo.cuda_device"] = torch.cuda.get_device_name(trainer.device)
        return tags

    def start_system_metrics(self, first_step_s: float, remaining_steps: int) -> None:
        """Sample CPU/memory/GPU often enough that even a short run records a few points."""
        if not self.active or not self.spec.system_metrics or self._monitor is not None:
            return
        if os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "").lower() in ("false", "0"):
            return
        import mlflow
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        estimate = max(first_step_s, 1e-3) * max(remaining_steps, 1)
        interval = float(min(max(estimate / 100.0, 0.5), 30.0))  # ~100 samples, within [0.5 s, 30 s]
        user_interval = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL" in os.environ  # the user's choice wins
        if not user_interval:
            mlflow.set_system_metrics_sampling_interval(interval)
        self._monitor = SystemMetricsMonitor(
            self.run_id,
            sampling_interval=interval,
            samples_before_logging=1,
            resume_logging=True,
            tracking_uri=self.uri,
        )
        self._monitor.start()
        if not user_interval:  # unset only what was set here, never the user's variable
            mlflow.set_system_metrics_sampling_interval(None)

    # ------------------------------------------------------------------------------------------- logging

    def _usable(self, kind: str) -> bool:
        """Whether to call the store now; once it failed, count what is not logged instead of retrying."""
        if not self.active or not self._started:
            return False
        if self.offline_since is not None:
            self.not_logged[kind] = self.not_logged.get(kind, 0) + 1
            return False
        return True

    def _failed(self, kind: str, step: int, exc: BaseException) -> None:
        """The store stopped answering: say so once, keep training, remember what was not logged."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.offline_since, self._offline_reason = step, text[:200]
        self.not_logged[kind] = self.not_logged.get(kind, 0) + 1
        log.warning(
            "MLflow store %s stopped answering at step %d (%s): training goes on with local checkpoints; "
            "nothing more is sent to MLflow for this run",
            self.uri,
            step,
            self._offline_reason,
        )

    def missing_summary(self) -> str | None:
        """A sentence on what was not logged because the store stopped answering (None when all was logged)."""
        if self.offline_since is None:
            return None
        parts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.not_logged.items()))
        return (
            f"MLflow store {self.uri} stopped answering at step {self.offline_since} ({self._offline_reason}); "
            f"not logged to run {self.run_id}: {parts}. The local checkpoints and samples are complete."
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if not self._usable("metric batches"):
            return
        try:
            self._log_metrics(metrics, step)
        except Exception as exc:
            self._failed("metric batches", step, exc)

    def _log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        import mlflow

        out = dict(metrics)
        try:
            import torch

            if torch.cuda.is_available() and torch.cuda.is_initialized():
                out["perf/cuda_memory_allocated_gb"] = torch.cuda.memory_allocated() / 2**30
                out["perf/cuda_max_memory_allocated_gb"] = torch.cuda.max_memory_allocated() / 2**30
        except Exception:
            pass
        mlflow.log_metrics(out, step=step)

    def log_image(self, grid: np.ndarray, step: int) -> None:
        if not self._usable("sample grids"):
            return
        import mlflow

        try:
            mlflow.log_image(grid, artifact_file=f"samples/step_{step:07d}.png")
        except Exception as exc:
            self._failed("sample grids", step, exc)

    def log_checkpoint(self, path: Path, step: int) -> None:
        if not self._usable("checkpoints"):
            return
        import mlflow

        try:
            mlflow.set_tags({"zoo.checkpoint": str(Path(path).resolve()), "zoo.checkpoint_step": str(step)})
            if self.spec.log_checkpoints:
                mlflow.log_artifact(str(path), artifact_path="checkpoints")
        except Exception as exc:
            self._failed("checkpoints", step, exc)

    def finish(self, trainer: Any | None, status: str) -> None:
        """Log the final generator (when ``trainer`` is given) and close the run with ``status``."""
        if not self.active or not self._started:
            return
        import mlflow

        try:
            if self._monitor is not None:
                self._monitor.finish()
                self._monitor = None
            if trainer is not None and self.spec.log_model and self._usable("final model"):
                try:
                    self._log_model(trainer)
                except Exception as exc:
                    self._failed("final model", trainer.step, exc)
        finally:
            try:
                if self.offline_since is None:
                    mlflow.end_run(status=status)
                else:  # one try (the run stays RUNNING in the store if it still does not answer)
                    try:
                        mlflow.end_run(status=status)
                    except Exception:
                        self.not_logged[f"run status ({status})"] = 1
            except Exception as exc:
                self._failed(f"run status ({status})", getattr(trainer, "step", -1), exc)
            self._started = False
            summary = self.missing_summary()
            if summary:
                log.warning("%s", summary)

    def _log_model(self, trainer: Any) -> None:
        """Log the final generator as the weights-only folder ``model/`` (no pickle; see zoo.model_registry)."""
        import mlflow
        from torch.nn.parallel import DistributedDataParallel

        import zoo
        from zoo.model_registry import log_weights_model

        gen = trainer.generator
        gen = gen.module if isinstance(gen, DistributedDataParallel) else gen
        meta = {"recipe": trainer.recipe.name, "step": trainer.step, "zoo_version": zoo.__version__}
        uri = log_weights_model(gen, trainer.generator_block(), meta=meta)
        mlflow.set_tag("zoo.model_uri", uri)

    # ------------------------------------------------------------------------------------------- lookups

    def checkpoint_for_run(self, run_id: str) -> Path:
        """The newest checkpoint of ``run_id`` in this tracker's store (see :func:`zoo.tracking.checkpoint_for_run`)."""
        return checkpoint_for_run(run_id, self.uri)
