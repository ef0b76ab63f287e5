"""Make ``import timm`` work on a CPU-only torch paired with a CUDA build of torchvision.

On these machines the only torchvision that fits ``torch==2.13.0+cpu`` is a CUDA build whose compiled
extension cannot load, and ``import torchvision`` then fails with "operator torchvision::nms does not exist"
because its Python code registers fake kernels for two operators the extension would have defined. timm
imports torchvision, so timm fails too.

:func:`ensure_torchvision_importable` defines the two missing operator *schemas* (``nms`` and ``qnms``)
before torchvision is imported, and only when torchvision's own extension cannot be loaded. The schemas carry
no kernel: calling ``torchvision.ops.nms`` still raises, which is right, since the zoo never calls it. On a
machine where torchvision is whole this does nothing. Site-packages are never edited.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_MISSING_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the torch.library.Library alive; dropping it would unregister the schemas
_state: str | None = None


def _extension_path() -> Path | None:
    spec = importlib.util.find_spec("torchvision")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for candidate in sorted(Path(folder).glob("_C*.so")) + sorted(Path(folder).glob("_C*.pyd")):
            return candidate
    return None


def ensure_torchvision_importable() -> str:
    """Define torchvision's missing operator schemas when its extension cannot load.

    Returns:
        What was done: ``"absent"`` (torchvision not installed), ``"already-imported"``, ``"extension"``
        (the compiled extension loaded; nothing defined) or ``"schemas"`` (the two schemas were defined).
    """
    global _library, _state
    if _state is not None:
        return _state
    if "torchvision" in sys.modules:
        _state = "already-imported"
        return _state
    path = _extension_path()
    if path is None and importlib.util.find_spec("torchvision") is None:
        _state = "absent"
        return _state
    import torch

    if path is not None:
        try:
            torch.ops.load_library(str(path))
            _state = "extension"
            return _state
        except (OSError, RuntimeError):
            pass
    _library = torch.library.Library("torchvision", "DEF")
    for name, schema in _MISSING_SCHEMAS.items():
        if not torch._C._dispatch_has_kernel(f"torchvision::{name}") and not _has_schema(name):
            _library.define(schema)
    _state = "schemas"
    return _state


def _has_schema(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def import_timm():
    """Import and return timm after making torchvision importable."""
    ensure_torchvision_importable()
    import timm

    return timm
