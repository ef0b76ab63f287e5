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
    uri: str | None = Field(None, description="MLflow tracking URI; default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    experiment: str | None = Field(None, description="experiment name; default: the recipe's name")
    run_name: str | None = None
    system_metrics: bool = True
    log_model: bool = True


class CommonTrainSpec(StrictModel):
    """Keys of the ``train`` section that mean the same for every trainer."""

    trainer: str
    steps: int = Field(1000, ge=1, description="optimisation steps (updates) in total")
    batch_size: int = Field(8, ge=1)
    num_workers: int = Field(0, ge=0)
    device: str = "auto"
    amp: bool = Field(True, description="bf16 autocast on CUDA (never on CPU)")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA")
    compile: bool = Field(False, description="torch.compile the networks (CUDA)")
    checkpoint_every: int = Field(500, ge=1)
    log_every: int = Field(10, ge=1)
    sample_every: int = Field(200, ge=1)
    out_dir: str = "runs"
    on_nonfinite: Literal["stop"] = "stop"
