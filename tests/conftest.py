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
def _recipe_using(trainer: str):
    """A factory for the first shipped recipe whose train.trainer is ``trainer`` (trainers are built from recipes)."""

    def make(_shared):
        import yaml

        from zoo.recipe import load_recipe

        for path in sorted((ROOT / "recipes").glob("*.yaml")):
            if (yaml.safe_load(path.read_text()) or {}).get("train", {}).get("trainer") == trainer:
                return load_recipe(path)
        return None

    return make


def _shared_folder(*parts: str):
    return lambda shared: str(shared.joinpath(*parts)) if shared is not None else None


REQUIRED_TEST_PARAMS: dict[tuple[str, str], dict] = {
    ("loss", "self_feature_preserving"): {"pretrained": False},  # never ask for pretrained weights in tests
    ("dataset", "image_folder"): {
        "source": _shared_folder("data", "lowlight", "DICM"),
        "target": _shared_folder("data", "normal", "McMaster"),
    },
    ("trainer", "gan"): {"recipe": _recipe_using("gan")},
    ("trainer", "rl"): {"recipe": _recipe_using("rl")},
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


@pytest.fixture
def one_thread():
    """Run a test with one torch thread: tiny tensors on a busy 2-core machine lose time in OpenMP hand-offs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
