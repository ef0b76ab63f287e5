"""A tiny trainer for testing the training infrastructure, shared by the infra/tracking/resume/DDP tests.

It lives in the tests (the package has no placeholder components). It is registered only while a test uses the
``tiny_trainer`` fixture, and by the ``__main__`` block below when a test runs it in a subprocess:

    python tests/test_train_infra_tiny.py train RECIPE [zoo train options]
    python -m torch.distributed.run --nproc_per_node 2 tests/test_train_infra_tiny.py train RECIPE ...

The tiny trainer exercises every hook: two networks (one is the generator), two optimisers, a scheduler,
global-RNG use inside the step (noise), extra checkpoint state, an optional sleep per step (so a test can kill
it mid-step) and an optional NaN at a chosen step.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from zoo.registry import REGISTRIES  # noqa: E402
from zoo.specs import CommonTrainSpec, StrictModel  # noqa: E402
from zoo.train.base import Trainer  # noqa: E402

NAME = "tiny_test"


class TinyModelSpec(StrictModel):
    channels: int = 8


class TinyTrainSpec(CommonTrainSpec):
    lr: float = 0.01
    sleep: float = 0.0
    nan_at: int | None = None
    dump_dir: str | None = None  # DDP test: each rank saves its weights and batch checksum every step


class TinyGenerator(nn.Module):
    """x -> clamp(x + residual(x)): an image-to-image network of a few hundred parameters."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": (x + self.body(x)).clamp(0, 1)}


class TinyTrainer(Trainer):
    """LSGAN with a two-layer critic on top of :class:`TinyGenerator`."""

    ModelSpec = TinyModelSpec
    TrainSpec = TinyTrainSpec

    def generator_block(self) -> dict:
        return {"name": "tiny_test_generator", "channels": self.recipe.model.channels}

    def build(self) -> None:
        self.G = self.add_module("generator", self.build_generator())
        critic = nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 1),
        )
        self.D = self.add_module("critic", critic)
        self.opt_g = self.add_optimizer(
            "generator", torch.optim.Adam(self.module("generator").parameters(), lr=self.cfg.lr)
        )
        self.opt_d = self.add_optimizer("critic", torch.optim.Adam(self.module("critic").parameters(), lr=self.cfg.lr))
        self.add_scheduler("generator", torch.optim.lr_scheduler.StepLR(self.opt_g, step_size=3, gamma=0.7))
        self.history = torch.zeros(0)

    def train_step(self, batch):
        src, tgt = batch["source"], batch["target"]
        fake = self.G(src + 0.01 * torch.rand_like(src))["image"]  # global RNG: resume must restore it
        scores = self.D(torch.cat([tgt, fake.detach()]))
        real_s, fake_s = scores.chunk(2)
        loss_d = 0.5 * ((real_s - 1) ** 2).mean() + 0.5 * (fake_s**2).mean()
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        loss_g = 0.5 * ((self.D(fake) - 1) ** 2).mean() + (fake.mean() - tgt.mean()).abs()
        if self.cfg.nan_at is not None and self.step + 1 >= self.cfg.nan_at:
            loss_g = loss_g * float("nan")
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        self.history = torch.cat([self.history, loss_g.detach().view(1)])[-5:]
        if self.cfg.dump_dir:
            weights = {
                f"{n}.{k}": v.detach().clone()
                for n in ("generator", "critic")
                for k, v in self.module(n).state_dict().items()
            }
            torch.save(
                {"weights": weights, "batch_sum": float(src.sum())},
                Path(self.cfg.dump_dir) / f"rank{self.dist.rank}_step{self.step + 1}.pt",
            )
        if self.cfg.sleep:
            time.sleep(self.cfg.sleep)
        return {"loss/g": loss_g, "loss/d": loss_d, "history_mean": self.history.mean()}

    def extra_state(self) -> dict:
        return {"history": self.history}

    def load_extra_state(self, state: dict) -> None:
        self.history = state["history"]

    @property
    def generator(self) -> nn.Module:
        return self.module("generator")


def register_tiny() -> None:
    REGISTRIES["trainer"].add(NAME, TinyTrainer)
    REGISTRIES["generator"].add("tiny_test_generator", TinyGenerator)


def unregister_tiny() -> None:
    REGISTRIES["trainer"].remove(NAME)
    REGISTRIES["generator"].remove("tiny_test_generator")


@pytest.fixture
def tiny_trainer():
    register_tiny()
    yield TinyTrainer
    unregister_tiny()


def tiny_recipe(path: Path, *, steps: int = 6, tracking: bool = False, **train) -> Path:
    """Write a tiny-trainer recipe on 16 synthetic 24 x 32 scenes."""
    raw = {
        "name": "tiny",
        "seed": 3,
        "data": {"name": "synthetic", "size": 16, "height": 24, "width": 32, "crop_size": 16},
        "model": {"channels": 4},
        "train": {
            "trainer": NAME,
            "steps": steps,
            "batch_size": 4,
            "device": "cpu",
            "checkpoint_every": 2,
            "log_every": 1,
            "sample_every": 3,
            "samples": 2,
            "out_dir": str(path.parent / "runs"),
            **train,
        },
        "tracking": {"enabled": tracking, "system_metrics": False, "log_model": False},
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An empty, migrated MLflow sqlite store made once (creating one costs ~8 s; copying it is instant)."""
    path = tmp_path_factory.getbasetemp() / "mlflow_template.db"
    if not path.exists():
        from mlflow.tracking import MlflowClient

        work = tmp_path_factory.mktemp("mlflow_template")
        MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}").search_experiments()
        shutil.copy(work / "mlflow.db", path)
    return path


@pytest.fixture
def mlflow_store(tmp_path, mlflow_template, monkeypatch) -> str:
    """A fresh sqlite store in ``tmp_path`` (the working directory, so ./mlruns artifacts land there too)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


if __name__ == "__main__":
    register_tiny()
    from zoo.cli.main import main

    main(sys.argv[1:])
