"""Shared fixtures: offline by default, ../shared located once, registry-wide parameters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ZOO_SHARED_DIR", ROOT.parent / "shared"))

# Parameters the registry-wide tests pass to components whose constructor has required parameters
# (a path, say). Keyed by (kind, name); values may be callables taking the `shared_dir`-or-None.
REQUIRED_TEST_PARAMS: dict[tuple[str, str], dict] = {
    ("loss", "self_feature_preserving"): {"pretrained": False},  # never ask for pretrained weights in tests
}


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the calling test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the read-only ../shared data beside the checkout), which is absent here")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder; tests that use it skip with a clear reason when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED}, which is absent here")
    return SHARED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA, and no GPU is present")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def shared_dir_or_none() -> Path | None:
    """The ../shared folder, or None when it is absent (for tests that can run either way)."""
    return SHARED if SHARED.is_dir() else None
