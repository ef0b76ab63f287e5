"""ONNX export of any generator (image output only), with dynamic height and width, checked against PyTorch.

The exported graph takes ``input`` (``N x 3 x H x W`` float32 in [0, 1]) and returns ``image``. Height and
width are dynamic; a generator with shape-dependent Python branches (EnlightenGAN's large-photo downsample path
above ``max_width``) is exported for the branch below the limit, and the export records that bound.

Slider generators (:class:`zoo.contracts.SliderGenerator`: a network that looks at a thumbnail plus an editing
``software``) are exported as their network only, since the software (per-image data-dependent filters) is not a
graph; the ONNX file's metadata names the software and its sliders, so the values can be applied with ``zoo edit``:

- an RL editor (``rl_editor``) as its policy: ``input`` is the ``N x 3 x T x T`` thumbnail and the outputs are
  ``logits`` (``N x K x L``) and ``value``; the metadata gives the level mapping ``p = (a - (L-1)/2) / ((L-1)/2)``;
- a slider regressor (``edit_regressor``) as its regressor: thumbnail in, ``params`` (``N x K`` slider values,
  already in their ranges) out; the metadata gives each slider's range and neutral value.
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


class _PolicyOnly(nn.Module):
    """Wraps an RL editor's policy: thumbnail in, slider logits and value out."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits, value = self.policy(x)
        return logits, value


class _RegressorOnly(nn.Module):
    """Wraps a slider regressor: thumbnail in, slider values out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.regress(x)


def _slider_kind(model: nn.Module) -> str | None:
    """``"policy"`` (RL editor), ``"regressor"`` (thumbnail -> slider values) or ``None`` (export the image path)."""
    from zoo.contracts import PolicySliderGenerator, SliderGenerator

    if isinstance(model, PolicySliderGenerator) or all(
        hasattr(model, a) for a in ("policy", "software", "levels", "thumbnail_size")
    ):
        return "policy"
    if isinstance(model, SliderGenerator) and callable(getattr(model, "regress", None)):
        return "regressor"
    return None


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
    kind: str = "image"  # "image": the whole generator; "policy": an RL editor's policy (thumbnail -> logits);
    # "regressor": a slider regressor's network (thumbnail -> slider values)


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
    slider_kind = _slider_kind(model)
    if slider_kind == "policy":
        return _export_policy(model, path, opset=opset, check=check, atol=atol)
    if slider_kind == "regressor":
        return _export_regressor(model, path, opset=opset, check=check, atol=atol)
    max_width = getattr(model, "max_width", None)
    wrapped = _ImageOnly(model).eval()
    example = torch.rand(1, 3, *example_size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    # min 16: reflection padding to a multiple of 16 needs sides above 8; max: below the large-photo branch
    height = torch.export.Dim("height", min=16, max=16384)
    width = torch.export.Dim("width", min=16, max=max_width if max_width else 16384)
    _export(
        wrapped,
        example,
        path,
        ["image"],
        {"x": {0: batch, 2: height, 3: width}},
        opset,
        who=type(generator).__name__,
    )
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


def _export(
    wrapped: nn.Module,
    example: Tensor,
    path: Path,
    outputs: list[str],
    dynamic_shapes: dict,
    opset: int,
    *,
    who: str,
    metadata: dict[str, str] | None = None,
) -> None:
    """Trace ``wrapped`` with torch.export and save the ONNX program; a sentence if it cannot be traced."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapped,
                (example,),
                dynamo=True,
                input_names=["input"],
                output_names=outputs,
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
            if metadata:
                for key, value in metadata.items():
                    program.model.metadata_props[key] = value
            program.save(str(path))
    except Exception as exc:  # torch.export's errors are pages long: keep the first line, say what to do
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"export_onnx: {who} cannot be exported to ONNX: torch.export could not trace its forward "
            f"({type(exc).__name__}: {first[:300]}). Feed-forward generators such as enlightengan_unet export; "
            "a generator with data-dependent Python control flow needs an export-friendly forward."
        ) from None


def _export_policy(model: nn.Module, path: Path, *, opset: int, check: bool, atol: float) -> ExportReport:
    """Export an RL editor's policy network (thumbnail -> logits, value) with the software named in metadata."""
    size = int(model.thumbnail_size)
    wrapped = _PolicyOnly(model.policy).eval()
    software = model.software
    metadata = {
        "zoo.kind": "policy",
        **_software_metadata(software),
        "zoo.levels": str(int(model.levels)),
        "zoo.thumbnail": f"{size}x{size} RGB in [0, 1], area-resized and rounded to 8 bits",
        "zoo.mapping": "action a = argmax(logits[k]); slider p = (a - (L-1)/2) / ((L-1)/2)",
    }
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = torch.rand(2, 3, size, size)
    _export(
        wrapped,
        example,
        path,
        ["logits", "value"],
        {"x": {0: batch}},
        opset,
        who=f"the policy of {type(model).__name__}",
        metadata=metadata,
    )
    report = ExportReport(path=path, opset=opset, max_abs_diff=None, checked_size=None, max_width=None, kind="policy")
    if check:
        import onnxruntime as ort

        x = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        logits_o, value_o = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.inference_mode():
            logits, value = wrapped(x)
        diff = max(
            float((torch.from_numpy(logits_o) - logits).abs().max()),
            float((torch.from_numpy(value_o) - value).abs().max()),
        )
        report.max_abs_diff, report.checked_size = diff, (size, size)
        if diff > atol:
            raise InputError(f"export_onnx: the exported policy differs from PyTorch by {diff:.3g} (> {atol:g}).")
    return report


def _software_metadata(software: nn.Module) -> dict[str, str]:
    import json

    specs = getattr(software, "specs", [])
    return {
        "zoo.software": str(getattr(software, "software_name", type(software).__name__)),
        "zoo.sliders": json.dumps(list(software.names)),
        "zoo.ranges": json.dumps({n: [s.low, s.high] for n, s in zip(software.names, specs, strict=True)}),
        "zoo.neutral": json.dumps({n: s.neutral for n, s in zip(software.names, specs, strict=True)}),
    }


def _export_regressor(model: nn.Module, path: Path, *, opset: int, check: bool, atol: float) -> ExportReport:
    """Export a slider regressor's network (thumbnail -> slider values) with the software named in metadata."""
    size = int(model.thumbnail_size)
    wrapped = _RegressorOnly(model).eval()
    metadata = {
        "zoo.kind": "regressor",
        **_software_metadata(model.software),
        "zoo.thumbnail": f"{size}x{size} RGB in [0, 1], area-resized (OpenCV INTER_AREA), not rounded",
        "zoo.mapping": "output params[n, k] is slider k's value, already within its range (zoo.ranges)",
    }
    batch = torch.export.Dim("batch", min=1, max=4096)
    _export(
        wrapped,
        torch.rand(2, 3, size, size),
        path,
        ["params"],
        {"x": {0: batch}},
        opset,
        who=f"the regressor of {type(model).__name__}",
        metadata=metadata,
    )
    report = ExportReport(
        path=path, opset=opset, max_abs_diff=None, checked_size=None, max_width=None, kind="regressor"
    )
    if check:
        x = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
        diff = check_onnx(path, wrapped, x)
        report.max_abs_diff, report.checked_size = diff, (size, size)
        if diff > atol:
            raise InputError(f"export_onnx: the exported regressor differs from PyTorch by {diff:.3g} (> {atol:g}).")
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
