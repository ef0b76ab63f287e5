"""Recipe sections shared by every trainer: ``train`` (common keys) and ``tracking``.

No heavy imports here: recipes are validated before anything heavy runs. Trainers subclass
:class:`CommonTrainSpec` for their own ``train`` keys (strict: an unknown key is an error).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys (typos in recipes)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrackingSpec(StrictModel):
    """The recipe's ``tracking`` section (MLflow)."""

    enabled: bool = True
    uri: str | None = Field(
        None, description="MLflow tracking URI; default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db"
    )
    experiment: str | None = Field(None, description="experiment name; default: the recipe's name")
    run_name: str | None = None
    system_metrics: bool = Field(True, description="CPU/memory/GPU sampling (interval scaled to the run length)")
    log_model: bool = Field(True, description="log the final generator with mlflow.pytorch (artifact 'model')")
    log_checkpoints: bool = Field(True, description="upload each checkpoint as artifact checkpoints/last.pt")


class CommonTrainSpec(StrictModel):
    """Keys of the ``train`` section that mean the same for every trainer."""

    trainer: str
    steps: int = Field(1000, ge=1, description="optimisation steps (updates) in total")
    batch_size: int = Field(8, ge=1, description="images per process and step (DDP: per rank)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (seeded)")
    device: str = Field("auto", description="auto|cpu|cuda|cuda:N|mps (--device overrides)")
    amp: bool = Field(True, description="bf16 autocast on CUDA (never on CPU)")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA")
    compile: bool = Field(False, description="torch.compile the networks (CUDA)")
    checkpoint_every: int = Field(500, ge=1)
    log_every: int = Field(10, ge=1)
    sample_every: int = Field(200, ge=1)
    samples: int = Field(4, ge=0, description="images in each logged sample grid (0: none)")
    out_dir: str = Field("runs", description="run folders go to <out_dir>/<recipe name>/<timestamp>/")
    max_minutes: float | None = Field(
        None, gt=0, description="stop early (checkpoint, final model) once training has run this long; null: no limit"
    )
    on_nonfinite: Literal["stop"] = "stop"
