"""The Trainer base class: everything a training loop shares, so a method only writes its update.

A trainer is registered under kind ``"trainer"`` and subclasses :class:`Trainer`::

    @register("trainer", "gan")
    class GANTrainer(Trainer):
        ModelSpec = GANModelSpec          # pydantic (StrictModel): validates the recipe's ``model`` section
        TrainSpec = GANTrainSpec          # subclass of zoo.specs.CommonTrainSpec: the ``train`` section

        def build(self) -> None:                            # REQUIRED: networks, optimisers, schedulers
            self.G = self.add_module("generator", self.build_generator())
            self.D = self.add_module("discriminator", zoo.create("discriminator", self.model_cfg.discriminator))
            self.opt_g = self.add_optimizer("generator", torch.optim.Adam(self.G.parameters(), lr=self.cfg.lr))
            self.add_scheduler("generator", torch.optim.lr_scheduler.LambdaLR(self.opt_g, lambda step: 1.0))

        def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:   # REQUIRED: one update
            with self.autocast():
                out = self.G(batch["source"])["image"]
            ...
            return {"loss/g": float(loss_g), "loss/d": float(loss_d)}

        @property
        def generator(self) -> nn.Module:                   # REQUIRED: the live inference model (unwrapped)
            return self.module("generator")

Hooks (override in the subclass)
--------------------------------
``generator_block(self) -> dict`` (default: the recipe's ``model.generator`` block)
    The registered generator block that rebuilds the inference model (``forward(x) -> {"image": ...}``).
    Checkpoints record it, and ``zoo.checkpoint_io.load_generator`` builds it with ``zoo.registry.create`` and then
    loads the weights, so inference needs no trainer class. :meth:`build_generator` builds it for training.
``build(self) -> None`` (required)
    Create the networks with :meth:`add_module` (moves to the device, channels_last on CUDA, wraps in DDP under
    torchrun, optional ``torch.compile`` on CUDA; returns the module to use for training forwards), then the
    optimisers with :meth:`add_optimizer` (create them AFTER ``add_module``) and the schedulers with
    :meth:`add_scheduler`. Everything added is checkpointed and restored on resume. ``self.dataset`` exists already.
``train_step(self, batch) -> dict[str, float]`` (required)
    One optimisation step (the base counts steps: one call = one step). ``batch`` is the dataset's collated dict
    (``"source"``, ``"target"``, maybe ``"source_original"``: ``N x 3 x H x W`` in ``[0, 1]``) already on
    ``self.device``. Return scalar metrics (floats or 0-d tensors; same keys on every rank). Every value is
    checked: a NaN or Inf stops the run naming the step and the key, keeping the last good checkpoint. Call
    ``self.next_batch()`` to draw more batches in one step (the data stream position is checkpointed).
``generator`` (property, required)
    The live inference model, unwrapped (no DDP/compile wrapper). Logged weights-only (``model/``) at the end and
    sampled for image grids. If it is one of the modules added with :meth:`add_module`, checkpoints store it once.
``extra_state(self) -> dict`` / ``load_extra_state(self, state) -> None`` (optional)
    More state to checkpoint (e.g. an RL replay buffer): tensors, numbers, strings, lists and dicts only
    (checkpoints load with ``weights_only=True``).
``sample_images(self, batch) -> dict[str, Tensor]`` (optional)
    Named image batches (``N x 3 x H x W`` in ``[0, 1]``, same size) shown side by side in the sample grid logged
    to MLflow every ``train.sample_every`` steps. Runs under ``torch.no_grad`` and with the RNG forked, so it never
    changes training. Default: source | generator output, with the generator in eval mode.
``check_recipe(cls, recipe) -> None`` (classmethod, optional)
    Cross-section checks at recipe load (raise a ``ZooError`` subclass with a sentence). The adversarial trainers
    run the contract checks of :func:`zoo.train.adversarial.check_adversarial_recipe` here.
``upgrade_message(cls, source, model, train) -> str | None`` (classmethod, optional)
    A sentence converting a recipe written in an older layout (checked before the strict key check).

What subclasses can use
-----------------------
``self.recipe`` (``zoo.recipe.Recipe``), ``self.model_cfg`` (its ModelSpec instance), ``self.cfg`` (its TrainSpec
instance), ``self.device``, ``self.dist`` (rank, world_size, local_rank, is_main), ``self.step`` (steps done),
``self.dataset``, ``self.seed``, ``self.autocast()`` (bf16 on CUDA when ``train.amp``; no-op on CPU),
``self.channels_last``, ``self.module(name)`` (unwrapped), ``self.optimizers``, ``self.schedulers``,
``self.next_batch()``, ``self.log`` (a ``logging.Logger`` writing to stderr).

What the base does
------------------
Device selection, seeding (``recipe.seed + rank``), the dataset (``zoo.registry.create("dataset", recipe.data)``) and
a seeded, resumable data stream (DistributedSampler-compatible sharding, worker seeds), the loop with a rich
progress bar (ETA + current metrics; off with ``quiet``), scheduler stepping (each added scheduler steps once after
every ``train_step``), the NaN/Inf stop, atomic checkpoints every ``train.checkpoint_every`` steps and at the end,
resume (modules, optimisers, schedulers, extra state, RNG states of every rank, data position, same MLflow run),
MLflow tracking on rank 0 (see :mod:`zoo.train.tracking`) and the DDP process group. Around the loop
(:mod:`zoo.train.supervision`): the run folder is locked while training, SIGINT / SIGTERM stop after the current
step with a checkpoint and the MLflow run marked KILLED, plain progress lines replace the bar when stderr is not a
terminal, and a recipe name with path parts is refused.

Entry point: :func:`train` (what ``zoo train`` calls).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel
from torch import nn

from zoo import devices
from zoo.errors import TrainingError, ZooError
from zoo.specs import CommonTrainSpec
from zoo.train import distributed as _dist

if TYPE_CHECKING:
    from zoo.recipe import Recipe

log = logging.getLogger("zoo.train")
_STOP_KEY = "__zoo_stop__"
_SIGNAL_KEY = "__zoo_signal__"
_FAILURES_KEY = "data/decode_failures"  # images that passed the header scan but failed to decode during training


@dataclasses.dataclass
class TrainResult:
    """What a finished (or stopped) run leaves behind."""

    steps: int
    run_dir: Path | None
    checkpoint: Path | None
    run_id: str | None
    tracking_uri: str | None
    experiment: str | None
    metrics: dict[str, float]
    interrupted: str | None = None  # the signal (SIGINT / SIGTERM) that stopped the run after a checkpoint


class Trainer:
    """Base class of every trainer (see the module docstring for the hooks)."""

    ModelSpec: ClassVar[type[BaseModel]]
    TrainSpec: ClassVar[type[CommonTrainSpec]] = CommonTrainSpec

    def __init__(
        self,
        recipe: Recipe,
        *,
        device: str | None = None,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        quiet: bool = False,
    ) -> None:
        """Prepare a run (nothing heavy happens until :meth:`fit`).

        Args:
            recipe: a validated ``zoo.recipe.Recipe`` whose trainer is this class.
            device: overrides ``recipe.train.device`` (``auto|cpu|cuda|cuda:N|mps``).
            tracking_uri: overrides ``MLFLOW_TRACKING_URI`` and ``recipe.tracking.uri``.
            experiment: overrides ``recipe.tracking.experiment`` (default: the recipe's name).
            quiet: no progress bar.
        """
        self.recipe = recipe
        self.model_cfg = recipe.model
        self.cfg: CommonTrainSpec = recipe.train
        self.seed = int(recipe.seed)
        self.quiet = quiet
        self.log = log
        self._device_spec = device or self.cfg.device
        self._tracking_uri = tracking_uri
        self._experiment = experiment
        self.dist = _dist.env_info()
        self.device = devices.resolve_device(
            self._device_spec, local_rank=self.dist.local_rank if self.dist.enabled else None
        )
        self.channels_last = devices.uses_channels_last(self.device, self.cfg.channels_last)
        self.step = 0
        self._decode_failures = 0
        self.dataset: Any = None
        self._modules: dict[str, nn.Module] = {}
        self._wrapped: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self._stream: Any = None
        self._ckpt_path: Path | None = None
        self._ckpt_step: int | None = None

    # ------------------------------------------------------------------------------------------- hooks

    @classmethod
    def check_recipe(cls, recipe: Any) -> None:
        """Cross-section checks at recipe load, before anything is built (raise a ZooError with a sentence)."""

    @classmethod
    def upgrade_message(cls, source: str, model: dict[str, Any], train: dict[str, Any]) -> str | None:
        """A sentence on how to convert a recipe written in a layout this trainer no longer reads, or None."""
        return None

    def generator_block(self) -> dict[str, Any]:
        """The component block that rebuilds :attr:`generator` (default: the recipe's ``model.generator``)."""
        block = getattr(self.recipe.model, "generator", None)
        if block is None:
            raise NotImplementedError(f"{type(self).__name__} has no model.generator block: override generator_block()")
        return dict(block)

    def build_generator(self) -> nn.Module:
        """Build the generator from :meth:`generator_block` (what inference rebuilds from a checkpoint)."""
        from zoo.registry import create

        return create("generator", self.generator_block(), where=self.recipe.where("model.generator"))

    def build(self) -> None:
        """Create networks, optimisers and schedulers with the ``add_*`` helpers (override)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build()")

    def train_step(self, batch: dict[str, torch.Tensor]) -> Mapping[str, float | torch.Tensor]:
        """One optimisation step; returns scalar metrics (override)."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_step(batch)")

    @property
    def generator(self) -> nn.Module:
        """The live inference model, unwrapped (override)."""
        raise NotImplementedError(f"{type(self).__name__} must implement the generator property")

    def extra_state(self) -> dict[str, Any]:
        """More state to checkpoint (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def sample_images(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named image batches for the sample grid (default: source | generator output)."""
        gen = self.generator
        was_training = gen.training
        gen.eval()
        try:
            out = gen(batch["source"])
        finally:
            gen.train(was_training)
        image = out["image"] if isinstance(out, Mapping) else out
        return {"source": batch["source"], "output": image}

    # ------------------------------------------------------------------------------------------- helpers

    def add_module(
        self, name: str, module: nn.Module, *, ddp: bool = True, compile: bool = True, **ddp_kwargs: Any
    ) -> nn.Module:
        """Register a network: device, channels_last (CUDA), DDP (torchrun), torch.compile (CUDA, ``train.compile``).

        Args:
            name: key in checkpoints.
            module: the network (unwrapped).
            ddp: wrap in DistributedDataParallel under torchrun (only if it has trainable parameters).
            compile: allow ``torch.compile`` when the recipe asks for it.
            **ddp_kwargs: passed to DistributedDataParallel (e.g. ``find_unused_parameters=True``).

        Returns:
            The module to call in ``train_step`` (possibly wrapped). :meth:`module` gives the unwrapped one.
        """
        if name in self._modules:
            raise TrainingError(f"{type(self).__name__}: a module named {name!r} was already added.")
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self._modules[name] = module
        wrapped = _dist.wrap(module, self.device, **ddp_kwargs) if ddp else module
        if compile and self.cfg.compile and self.device.type == "cuda":
            wrapped = torch.compile(wrapped)
        self._wrapped[name] = wrapped
        return wrapped

    def module(self, name: str) -> nn.Module:
        """The unwrapped module added under ``name``."""
        return self._modules[name]

    def add_optimizer(self, name: str, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Register an optimiser (checkpointed; its first group's lr is logged as ``lr/<name>``)."""
        self.optimizers[name] = optimizer
        return optimizer

    def add_scheduler(self, name: str, scheduler: Any) -> Any:
        """Register an lr scheduler; the base calls ``scheduler.step()`` once after every ``train_step``."""
        self.schedulers[name] = scheduler
        return scheduler

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when ``train.amp`` is on; a no-op on the CPU."""
        return devices.autocast(self.device, self.cfg.amp)

    def next_batch(self) -> dict[str, torch.Tensor]:
        """The next batch of the seeded data stream, on the device."""
        batch = next(self._stream)
        return devices.to_device(batch, self.device, self.channels_last)

    # ------------------------------------------------------------------------------------------- the run

    def fit(self, resume: str | Path | None = None) -> TrainResult:
        """Train for ``train.steps`` steps (continuing a checkpoint or MLflow run when ``resume`` is given).

        The run folder is locked while training (:class:`zoo.train.supervision.RunLock`); SIGINT / SIGTERM stop
        after the current step with a checkpoint and the MLflow run marked KILLED (``TrainResult.interrupted``).
        """
        self._lock: Any = None
        try:
            return self._fit(resume)
        finally:
            if self._lock is not None:
                self._lock.release()

    def _fit(self, resume: str | Path | None) -> TrainResult:
        from zoo.data.loader import DataStream
        from zoo.train import checkpoint as ckpt
        from zoo.train.supervision import Interrupted, RunLock, StopSignals, run_folder_name
        from zoo.train.tracking import Tracker

        run_folder_name(self.recipe.name)  # before anything is created: the name must be a plain folder name
        info = _dist.init(self.device, self.dist)
        tracker = Tracker.for_run(
            self.recipe, cli_uri=self._tracking_uri, cli_experiment=self._experiment, active=info.is_main
        )
        state = None
        if resume is not None:
            path = ckpt.resolve_resume(resume, tracker)
            state = ckpt.load_checkpoint(path, map_location="cpu")
            ckpt.check_compatible(state, self.recipe, path)
            self._ckpt_path, self._ckpt_step = Path(path), int(state["step"])
            tracker.adopt(state)
        tracker.check_reachable()  # before anything heavy: an unreachable server stops the run here
        if state is not None and info.is_main and self._resumes_in_place():
            self._lock = RunLock(self._run_dir(state)).acquire()  # before the MLflow run is touched

        ckpt.seed_everything(self.seed + info.rank)
        from zoo.registry import create

        self.dataset = create("dataset", self.recipe.data, where=self.recipe.where("data"))
        self.build()
        if not self._modules:
            raise TrainingError(f"{type(self).__name__}.build() added no module; use self.add_module(...).")
        self._stream = DataStream(
            self.dataset,
            batch_size=self.cfg.batch_size,
            num_workers=self.cfg.num_workers,
            seed=self.seed,
            rank=info.rank,
            world_size=info.world_size,
            pin_memory=self.device.type == "cuda",
        )
        if state is not None:
            self._restore(state, info)
        run_dir = self._run_dir(state) if info.is_main else None
        if run_dir is not None and self._lock is None:
            self._lock = RunLock(run_dir).acquire()
        if run_dir is not None and not (run_dir / "recipe.yaml").exists():
            import yaml

            (run_dir / "recipe.yaml").write_text(
                yaml.safe_dump(self.recipe.to_dict(), sort_keys=False), encoding="utf-8"
            )
        try:
            tracker.start(self, run_dir=run_dir, resumed=state is not None)
        except Exception as exc:
            self._release()
            if state is None and run_dir is not None:  # no orphan run folder from a store that failed to start
                import shutil

                shutil.rmtree(run_dir, ignore_errors=True)
            if isinstance(exc, ZooError):
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise TrainingError(
                f"MLflow could not start the run in {tracker.uri}: {first}. Nothing was trained; fix the store or "
                "turn tracking off with --set tracking.enabled=false."
            ) from None
        if info.is_main:
            log.info(
                "training %s (%s) on %s, world size %d, steps %d -> %d, run dir %s, MLflow %s",
                self.recipe.name,
                self.cfg.trainer,
                self.device,
                info.world_size,
                self.step,
                self.cfg.steps,
                run_dir,
                tracker.describe(),
            )
        status, interrupted = "FAILED", None
        try:
            with StopSignals() as self._signals:
                metrics = self._loop(tracker, run_dir, info)
            status = "FINISHED"
        except Interrupted as exc:  # a checkpoint of this step is saved: close the run as KILLED, say how to resume
            status, interrupted, metrics = "KILLED", exc.name, dict(self._last_metrics)
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            tracker.finish(self if status == "FINISHED" else None, status)
            self._release()
        if interrupted is not None and info.is_main:
            log.warning(
                "stopped by %s at step %d of %d; checkpoint %s; MLflow run %s marked KILLED",
                interrupted,
                self.step,
                self.cfg.steps,
                self._ckpt_path,
                tracker.run_id or "(tracking off)",
            )
        return TrainResult(
            interrupted=interrupted,
            steps=self.step,
            run_dir=run_dir,
            checkpoint=self._ckpt_path,
            run_id=tracker.run_id,
            tracking_uri=tracker.uri,
            experiment=tracker.experiment,
            metrics=metrics,
        )

    def _resumes_in_place(self) -> bool:
        return self._ckpt_path is not None and self._ckpt_path.parent.name == "checkpoints"

    def _loop(self, tracker: Any, run_dir: Path | None, info: _dist.DistInfo) -> dict[str, float]:
        from zoo.train.supervision import Interrupted

        cfg = self.cfg
        self._last_metrics: dict[str, float] = {}
        signals = getattr(self, "_signals", None)
        sample_batch = self._sample_batch() if info.is_main and self.cfg.samples > 0 else None
        if sample_batch is not None:
            self._count_decode_failures(sample_batch)
        progress = _Progress(total=cfg.steps, start=self.step, enabled=info.is_main and not self.quiet)
        last: dict[str, float] = {}
        window_start, window_images, window_steps = time.perf_counter(), 0, 0
        deadline = time.perf_counter() + 60.0 * cfg.max_minutes if cfg.max_minutes else None
        stop = False
        with progress:
            while self.step < cfg.steps and not stop:
                t0 = time.perf_counter()
                batch = self.next_batch()
                self._count_decode_failures(batch)
                raw = self.train_step(batch)
                for sched in self.schedulers.values():
                    sched.step()
                self.step += 1
                local = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in raw.items()}
                if deadline is not None:  # every rank must stop at the same step: agree through the reduction
                    local[_STOP_KEY] = float(time.perf_counter() > deadline)
                local[_FAILURES_KEY] = float(self._decode_failures)
                received = signals.received if signals is not None else None
                local[_SIGNAL_KEY] = float(received or 0)  # every rank stops at the same step, with a checkpoint
                metrics, bad = _dist.reduce_metrics(local, self.device)
                signalled = metrics.pop(_SIGNAL_KEY) > 0
                # files that failed to decode in the workers so far, over all ranks (the reduction averages)
                metrics[_FAILURES_KEY] *= info.world_size
                if deadline is not None:
                    stop = metrics.pop(_STOP_KEY) > 0
                    if stop:
                        log.info(
                            "train.max_minutes (%s) reached at step %d of %d: stopping here",
                            cfg.max_minutes,
                            self.step,
                            cfg.steps,
                        )
                images = _batch_len(batch) * info.world_size
                window_images += images
                window_steps += 1
                if bad:
                    tracker.log_metrics(metrics, self.step)
                    raise TrainingError(self._nonfinite_message(bad, metrics))
                last = self._last_metrics = metrics
                if window_steps == 1 and tracker.active:
                    tracker.start_system_metrics(time.perf_counter() - t0, cfg.steps - self.step + 1)
                progress.update(self.step, metrics)
                last_step = self.step == cfg.steps or stop or signalled
                if self.step % cfg.log_every == 0 or last_step:
                    elapsed = time.perf_counter() - window_start
                    extra = {f"lr/{n}": float(o.param_groups[0]["lr"]) for n, o in self.optimizers.items()}
                    extra["perf/images_per_s"] = window_images / max(elapsed, 1e-9)
                    extra["perf/step_time_s"] = elapsed / max(window_steps, 1)
                    tracker.log_metrics({**metrics, **extra}, self.step)
                    window_start, window_images, window_steps = time.perf_counter(), 0, 0
                if sample_batch is not None and (self.step % cfg.sample_every == 0 or last_step):
                    self._log_samples(tracker, sample_batch, run_dir)
                if self.step % cfg.checkpoint_every == 0 or last_step:
                    self._save(tracker, run_dir, info)
                if signalled and self.step < cfg.steps:
                    raise Interrupted(received or 15)
        return last

    def _count_decode_failures(self, batch: dict[str, Any]) -> None:
        """Take the datasets' per-sample count of files that failed to decode out of the batch, and add it up."""
        failures = batch.pop("decode_failures", None)
        if isinstance(failures, torch.Tensor):
            self._decode_failures += int(failures.sum())

    def _nonfinite_message(self, bad: list[str], metrics: Mapping[str, float]) -> str:
        what = ", ".join(f"{k} = {metrics[k]}" for k in bad)
        if self._ckpt_path is not None:
            keep = (
                f"The last good checkpoint is {self._ckpt_path} (step {self._ckpt_step}); resume from it with --resume."
            )
        else:
            keep = "No checkpoint had been written yet."
        return (
            f"Training stopped at step {self.step}: non-finite loss ({what}). {keep} "
            "Lower the learning rate, check the data, or turn off bf16 autocast (train.amp=false)."
        )

    # ------------------------------------------------------------------------------------------- state

    def _save(self, tracker: Any, run_dir: Path | None, info: _dist.DistInfo) -> None:
        from zoo.train import checkpoint as ckpt

        rng = _dist.gather_objects(ckpt.rng_state())  # collective: every rank takes part
        if not info.is_main or run_dir is None:
            return
        state = self.state_dict(rng_per_rank=rng, run_id=tracker.run_id, tracking_uri=tracker.uri)
        path = run_dir / "checkpoints" / "last.pt"
        ckpt.save_checkpoint(state, path)
        self._ckpt_path, self._ckpt_step = path, self.step
        tracker.log_checkpoint(path, self.step)

    def state_dict(self, *, rng_per_rank: list[Any], run_id: str | None, tracking_uri: str | None) -> dict[str, Any]:
        """Everything a checkpoint holds (see :mod:`zoo.train.checkpoint`)."""
        import zoo

        gen = self.generator
        state: dict[str, Any] = {
            "format": "enhance-zoo-checkpoint",
            "version": 1,
            "zoo_version": zoo.__version__,
            "trainer": self.cfg.trainer,
            "step": self.step,
            "data_position": self._stream.position,
            "world_size": self.dist.world_size,
            "modules": {n: m.state_dict() for n, m in self._modules.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "extra": self.extra_state(),
            "rng": rng_per_rank,
            "mlflow_run_id": run_id,
            "tracking_uri": tracking_uri,
            "recipe": self.recipe.to_dict(),
            # inference rebuilds the network from this block alone (no trainer class, no plugin trainer needed)
            "generator_block": self.generator_block(),
        }
        owner = next((n for n, m in self._modules.items() if m is gen), None)
        if owner is not None:
            state["generator_from"] = owner
        else:
            state["generator"] = gen.state_dict()
        return state

    def _restore(self, state: dict[str, Any], info: _dist.DistInfo) -> None:
        from zoo.train import checkpoint as ckpt

        missing = sorted(set(self._modules) - set(state["modules"]))
        if missing:
            raise TrainingError(f"The checkpoint has no weights for module(s) {', '.join(missing)} of this trainer.")
        for name, module in self._modules.items():
            module.load_state_dict(state["modules"][name])
        for name, opt in self.optimizers.items():
            if name in state["optimizers"]:
                opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            if name in state["schedulers"]:
                sched.load_state_dict(state["schedulers"][name])
        self.load_extra_state(state.get("extra", {}))
        self.step = int(state["step"])
        self._stream.seek(int(state.get("data_position", self.step)))
        rngs = state.get("rng") or []
        if len(rngs) == info.world_size:
            ckpt.set_rng_state(rngs[info.rank])
        else:
            log.warning(
                "The checkpoint was written by %d process(es) and this run has %d: RNG streams are re-seeded, "
                "so the run continues but will not match an uninterrupted one exactly.",
                len(rngs),
                info.world_size,
            )
            ckpt.seed_everything(self.seed + info.rank + 7919 * self.step)

    def _run_dir(self, state: dict[str, Any] | None) -> Path:
        if state is not None and self._ckpt_path is not None and self._ckpt_path.parent.name == "checkpoints":
            return self._ckpt_path.parent.parent
        base = Path(self.cfg.out_dir) / self.recipe.name
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir, n = base / stamp, 1
        while run_dir.exists():
            n += 1
            run_dir = base / f"{stamp}-{n}"
        run_dir.mkdir(parents=True)
        return run_dir

    # ------------------------------------------------------------------------------------------- samples

    def _sample_batch(self) -> dict[str, torch.Tensor] | None:
        from zoo.data.loader import fixed_batch

        n = min(self.cfg.samples, len(self.dataset))
        if n <= 0:
            return None
        with devices.fork_rng(self.device):
            batch = fixed_batch(self.dataset, n, seed=self.seed)
        return devices.to_device(batch, self.device, self.channels_last)

    def _log_samples(self, tracker: Any, batch: dict[str, torch.Tensor], run_dir: Path | None) -> None:
        from zoo.train.tracking import image_grid

        with devices.fork_rng(self.device), torch.no_grad():
            images = self.sample_images(batch)
        grid = image_grid(images)
        if run_dir is not None:
            from PIL import Image

            path = run_dir / "samples" / f"step_{self.step:07d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(grid).save(path)
        tracker.log_image(grid, self.step)

    # ------------------------------------------------------------------------------------------- teardown

    def _release(self) -> None:
        """Drop DDP wrappers, optimisers and the data stream, collect, then destroy the process group."""
        if self._stream is not None:
            self._stream.close()
        wrappers = {id(w) for n, w in self._wrapped.items() if w is not self._modules.get(n)}
        drop = wrappers | {id(o) for o in self.optimizers.values()}
        for name, value in list(vars(self).items()):  # subclasses keep the wrapped modules as attributes
            if id(value) in drop:
                setattr(self, name, None)
        self._wrapped.clear()
        self.optimizers.clear()
        self.schedulers.clear()
        if _dist.is_active():  # the gloo pitfall: nothing DDP may be alive when the group goes
            gc.collect()
            _dist.shutdown()


def _batch_len(batch: Mapping[str, Any]) -> int:
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 0


class _Progress:
    """A rich progress bar on stderr with ETA and the current metrics (or nothing when disabled).

    When stderr is not a terminal (CI logs, nohup) a live bar shows nothing until the end, so a plain line is
    printed every ``ZOO_PROGRESS_INTERVAL`` seconds (default 30) and at the end instead
    (:class:`zoo.train.supervision.PlainProgress`).
    """

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled
        self._plain: Any = None
        self._progress: Any = None
        self._task: Any = None
        self._total, self._start = total, start
        self._last_draw = 0.0

    def __enter__(self) -> _Progress:
        import sys

        if self.enabled and not sys.stderr.isatty():
            from zoo.train.supervision import PlainProgress

            self._plain = PlainProgress(self._total, self._start)
        elif self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]train[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=Console(stderr=True),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self._total, completed=self._start, metrics="")
        return self

    def update(self, step: int, metrics: Mapping[str, float]) -> None:
        if self._plain is not None:
            self._plain.update(step, metrics)
            return
        if self._progress is None:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.2 and step < self._total:
            return
        self._last_draw = now
        shown = "  ".join(f"{k}={_fmt(v)}" for k, v in list(metrics.items())[:6])
        self._progress.update(self._task, completed=step, metrics=shown)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def iter_trainers() -> Iterator[str]:
    """Names of the registered trainers (from the index)."""
    from zoo.registry import entries

    for e in entries("trainer"):
        yield e.name


def train(
    recipe: Any,
    *,
    device: str | None = None,
    resume: str | Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train a validated recipe with its trainer (what ``zoo train`` runs).

    Args:
        recipe: a ``zoo.recipe.Recipe``.
        device: overrides ``train.device``.
        resume: a checkpoint file, a run directory, or an MLflow run id to continue.
        tracking_uri: MLflow tracking URI (beats ``MLFLOW_TRACKING_URI`` and ``tracking.uri``).
        experiment: MLflow experiment (default ``tracking.experiment`` or the recipe's name).
        quiet: no progress bar.
    """
    cls = recipe.trainer_cls
    if cls is None:
        from zoo.registry import get

        cls = get("trainer", recipe.train.trainer)
    if not (isinstance(cls, type) and issubclass(cls, Trainer)):
        raise TrainingError(f"trainer {recipe.train.trainer!r} is not a subclass of zoo.train.base.Trainer.")
    trainer = cls(recipe, device=device, tracking_uri=tracking_uri, experiment=experiment, quiet=quiet)
    return trainer.fit(resume=resume)
