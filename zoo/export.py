"""ONNX export of any generator (image output only), with dynamic height and width, checked against PyTorch.

The exported graph takes ``input`` (``N x 3 x H x W`` float32 in [0, 1]) and returns ``image``. Height and
width are dynamic; a generator with shape-dependent Python branches (EnlightenGAN's large-photo downsample path
above ``max_width``) is exported for the branch below the limit, and the export records that bound.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from zoo.errors import InputError

__all__ = ["ExportReport", "check_onnx", "export_onnx"]


class _ImageOnly(nn.Module):
    """Wraps a generator so that the graph returns the image tensor only."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        out = self.generator(x)
        return out["image"] if isinstance(out, dict) else out


@dataclasses.dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how closely onnxruntime matches PyTorch."""

    path: Path
    opset: int
    max_abs_diff: float | None
    checked_size: tuple[int, int] | None
    max_width: int | None


def export_onnx(
    generator: nn.Module,
    path: str | os.PathLike[str],
    *,
    example_size: tuple[int, int] = (67, 93),
    opset: int = 18,
    check: bool = True,
    check_size: tuple[int, int] = (75, 101),
    atol: float = 1e-4,
) -> ExportReport:
    """Export ``generator`` to ONNX with dynamic batch, height and width, then check it in onnxruntime.

    Args:
        generator: a zoo generator (``forward(x) -> {"image": ...}``); exported in eval mode on the CPU (a copy:
            the caller's module is left as it was).
        path: the ``.onnx`` file to write (parent folders are created).
        example_size: ``(H, W)`` of the example input used for tracing.
        opset: ONNX opset version.
        check: run the exported model in onnxruntime at ``check_size`` and compare with PyTorch.
        check_size: ``(H, W)`` of the check input; different from ``example_size`` so the dynamic axes are tested.
        atol: largest accepted absolute difference in the check.

    Returns:
        An :class:`ExportReport` with the largest absolute difference found.

    Raises:
        InputError: the generator is not an ``nn.Module`` or the check fails.
    """
    if not isinstance(generator, nn.Module):
        raise InputError(f"export_onnx: expected a generator nn.Module, got {type(generator).__name__}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(generator).cpu().float().eval()
    max_width = getattr(model, "max_width", None)
    wrapped = _ImageOnly(model).eval()
    example = torch.rand(1, 3, *example_size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    # min 16: reflection padding to a multiple of 16 needs sides above 8; max: below the large-photo branch
    height = torch.export.Dim("height", min=16, max=16384)
    width = torch.export.Dim("width", min=16, max=max_width if max_width else 16384)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapped,
            (example,),
            dynamo=True,
            input_names=["input"],
            output_names=["image"],
            dynamic_shapes={"x": {0: batch, 2: height, 3: width}},
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
        program.save(str(path))
    report = ExportReport(path=path, opset=opset, max_abs_diff=None, checked_size=None, max_width=max_width)
    if check:
        x = torch.rand(2, 3, *check_size, generator=torch.Generator().manual_seed(0))
        diff = check_onnx(path, wrapped, x)
        report.max_abs_diff, report.checked_size = diff, check_size
        if diff > atol:
            raise InputError(
                f"export_onnx: the ONNX model differs from PyTorch by {diff:.3g} (> {atol:g}) at size {check_size}."
            )
    return report


def check_onnx(path: str | os.PathLike[str], model: nn.Module, x: Tensor) -> float:
    """Largest absolute difference between onnxruntime on ``path`` and ``model(x)`` (image output)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.inference_mode():
        out = model(x)
        ref = out["image"] if isinstance(out, dict) else out
    return float((torch.from_numpy(onnx_out) - ref).abs().max())
