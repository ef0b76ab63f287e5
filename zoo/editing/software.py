"""Editing "software": an ordered list of registered operators driven by one flat parameter vector.

A :class:`Software` provides what the RL agent, a backprop-trained generator and ``zoo edit`` need:
``apply(images, params)`` for a batch (any resolution, differentiable), ``neutral()``, the RL discretisation
(``L`` levels, ``p = (a - (L-1)/2) / ((L-1)/2)`` mapped into each parameter's range, neutral at the middle
level), named dicts and a human-readable JSON sidecar.

Registered softwares: ``lightroom_basic`` (the 12 sliders of Kosugi & Yamasaki, reference order),
``lightroom_local`` (a CLAHE slider, then the 10 global ones), ``exposure_filters`` (Hu et al.'s filters, flattened to
38 slots) and ``editor_chain`` (any list of editors).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.editing.base import Operator, ParamSpec, check_images
from zoo.editing.color import convert
from zoo.errors import DataError, InputError, ParameterError, available, suggest
from zoo.registry import create, get, register

SIDECAR_FORMAT = "enhance-zoo edit sidecar"
SIDECAR_VERSION = 1


class Software(nn.Module):
    """An ordered list of operators with a flat parameter vector of length ``K``.

    Consecutive operators that share a colour space share it without round trips, so the chain reproduces the
    reference editor's own sequence of conversions.

    Args:
        operators: editor names (or built operator modules), applied in this order.
        name: the software's name (recorded in sidecars).
    """

    def __init__(self, operators: Sequence[str | Operator], name: str = "editor_chain") -> None:
        super().__init__()
        if not operators:
            raise ParameterError(f"software {name!r} needs at least one operator.")
        self.software_name = name
        ops = [create("editor", op) if isinstance(op, str) else op for op in operators]
        self.ops = nn.ModuleList(ops)
        self.names: list[str] = []
        self.specs: list[ParamSpec] = []
        self._slices: list[slice] = []
        for op in ops:
            start = len(self.names)
            self.names.extend(op.slot_names)
            self.specs.extend(op.params)
            self._slices.append(slice(start, len(self.names)))
        if len(set(self.names)) != len(self.names):
            raise ParameterError(f"software {name!r}: an operator appears twice ({self.names}).")
        self.K: int = len(self.names)
        self.register_buffer("low", torch.tensor([s.low for s in self.specs]), persistent=False)
        self.register_buffer("high", torch.tensor([s.high for s in self.specs]), persistent=False)
        self.register_buffer("_neutral", torch.tensor([s.neutral for s in self.specs]), persistent=False)

    @classmethod
    def operator_names(cls, params: Mapping[str, Any]) -> list[str]:
        """The editor names this software applies, in order, from its constructor parameters (nothing is built).

        :func:`software_slots` reads a software's slider names through this. The base class answers from an
        ``operators`` parameter; a subclass with fixed operators overrides it.

        Raises:
            ParameterError: the software does not declare its operators.
        """
        ops = params.get("operators")
        if ops is None:
            raise ParameterError(
                f"software {getattr(cls, '__zoo_name__', cls.__name__)!r} does not declare its operators: give it an "
                "'operators' parameter or override the classmethod operator_names(cls, params)."
            )
        return [op if isinstance(op, str) else op.op_name for op in ops]

    # ------------------------------------------------------------------------------------------- editing

    def check_params(self, params: Any, n: int, ref: Tensor) -> Tensor:
        """``params`` as ``n x K`` on ``ref``'s device/dtype, clamped to the declared ranges."""
        expect = f"software {self.software_name!r} expects a parameter tensor N x {self.K} ({', '.join(self.names)})"
        if not isinstance(params, Tensor):
            raise InputError(f"{expect}; got {type(params).__name__}.")
        p = params.to(device=ref.device, dtype=ref.dtype)
        if p.dim() == 1 and p.shape[0] == self.K:
            p = p.view(1, self.K)
        if p.dim() != 2 or p.shape[1] != self.K or p.shape[0] not in (1, n):
            raise InputError(f"{expect}; got shape {tuple(params.shape)} for {n} image(s).")
        if not bool(torch.isfinite(p.detach()).all()):
            raise InputError(f"{expect}; the parameters contain NaN or Inf.")
        p = p.expand(n, self.K)
        return torch.maximum(torch.minimum(p, self.high.to(p)), self.low.to(p))

    def apply(self, images: Tensor, params: Tensor) -> Tensor:
        """Edit a batch.

        Args:
            images: ``N x 3 x H x W`` float in [0, 1], any resolution.
            params: ``N x K`` (or ``K``, broadcast); out-of-range values are clamped to each declared range.

        Returns:
            Edited images, same shape, dtype and device, in [0, 1]; differentiable w.r.t. images and params.
        """
        check_images(images, f"software {self.software_name!r}")
        p = self.check_params(params, images.shape[0], images)
        x, space = images, "srgb"
        for op, sl in zip(self.ops, self._slices, strict=True):
            x = convert(x, space, op.space)
            space = op.space
            x = op.native(x, p[:, sl])
        return convert(x, space, "srgb").clamp(0.0, 1.0)

    def forward(self, images: Tensor, params: Tensor) -> Tensor:
        return self.apply(images, params)

    def neutral(self, n: int = 1, device: torch.device | str | None = None) -> Tensor:
        """Neutral parameters ``n x K`` (float32): the identity edit, up to the reference's own residue."""
        return self._neutral.to(device=device if device is not None else self._neutral.device).expand(n, -1).clone()

    # ------------------------------------------------------------------------------------------- RL levels

    def levels_to_params(self, actions: Tensor, levels: int) -> Tensor:
        """Map discrete actions to parameters: ``u = (a - (L-1)/2) / ((L-1)/2)``, then into each range.

        The middle level is the neutral value; ``u = -1`` is the range's low end and ``u = 1`` its high end
        (piecewise linear, in log space for log-scaled parameters; identity for ``[-1, 1]`` sliders).

        Args:
            actions: integer tensor ``N x K`` in ``[0, levels - 1]``.
            levels: ``L`` (at least 2).

        Returns:
            ``N x K`` float32 parameters.
        """
        if levels < 2:
            raise InputError(f"software {self.software_name!r}: levels must be at least 2, got {levels}.")
        if not isinstance(actions, Tensor) or actions.dim() != 2 or actions.shape[1] != self.K:
            shape = tuple(actions.shape) if isinstance(actions, Tensor) else type(actions).__name__
            raise InputError(
                f"software {self.software_name!r}: levels_to_params expects an integer tensor "
                f"N x {self.K}, got {shape}."
            )
        if actions.is_floating_point() or int(actions.min()) < 0 or int(actions.max()) > levels - 1:
            raise InputError(
                f"software {self.software_name!r}: actions must be integers in [0, {levels - 1}] for L = {levels}."
            )
        half = (levels - 1) / 2.0
        u = (actions.float() - half) / half
        return torch.stack([s.from_unit(u[:, i]) for i, s in enumerate(self.specs)], dim=1).float()

    def params_to_levels(self, params: Tensor, levels: int) -> Tensor:
        """Nearest level of each parameter (inverse of :meth:`levels_to_params`), ``N x K`` int64."""
        if params.dim() == 1:
            params = params.view(1, -1)
        if params.shape[-1] != self.K:
            raise InputError(
                f"software {self.software_name!r}: params_to_levels expects N x {self.K}, got {tuple(params.shape)}."
            )
        half = (levels - 1) / 2.0
        p = params.detach().double()
        u = torch.stack([s.to_unit(p[:, i]) for i, s in enumerate(self.specs)], dim=1)
        return torch.round(u * half + half).clamp(0, levels - 1).long()

    # ------------------------------------------------------------------------------------------- names

    def to_dict(self, params_row: Tensor | Sequence[float]) -> dict[str, float]:
        """``{name: value}`` for one parameter vector of length K."""
        row = torch.as_tensor(params_row, dtype=torch.float64).detach().cpu().reshape(-1)
        if row.numel() != self.K:
            raise InputError(
                f"software {self.software_name!r}: to_dict expects {self.K} values ({', '.join(self.names)}), "
                f"got {row.numel()}."
            )
        return {n: float(v) for n, v in zip(self.names, row.tolist(), strict=True)}

    def from_dict(self, values: Mapping[str, float]) -> Tensor:
        """Vector of length K from ``{name: value}``; missing names take their neutral value.

        Raises:
            ParameterError: an unknown name (with the nearest names) or a value outside its range.
        """
        out = self._neutral.detach().cpu().clone().float()
        for key, value in values.items():
            if key not in self.names:
                raise ParameterError(
                    f"software {self.software_name!r} has no parameter {key!r}.{suggest(key, self.names)} "
                    f"{available(self.names)}"
                )
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise ParameterError(
                    f"software {self.software_name!r}: parameter {key!r} needs a number, got {value!r}."
                ) from None
            spec = self.specs[self.names.index(key)]
            if not math.isfinite(v) or v < spec.low - 1e-9 or v > spec.high + 1e-9:
                raise ParameterError(
                    f"software {self.software_name!r}: {key}={v:g} is outside its range "
                    f"[{spec.low:g}, {spec.high:g}] (neutral {spec.neutral:g})."
                )
            out[self.names.index(key)] = v
        return out

    # ------------------------------------------------------------------------------------------- sidecars

    def block(self) -> dict[str, Any]:
        """The registry block that rebuilds this software (``{"name": ...}`` plus non-default parameters)."""
        return {"name": self.software_name}

    def sidecar(self, params_row: Tensor | Sequence[float], **extra: Any) -> dict[str, Any]:
        """The JSON-able sidecar content for one image: software, named values, ranges, and ``extra`` fields.

        A software with parameters (an ``editor_chain``'s operators) also records its block under
        ``software_block``, so ``zoo edit --sidecar`` rebuilds the same sliders (:func:`software_for_sidecar`).
        """
        values = self.to_dict(params_row)
        block = self.block()
        return {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "software": self.software_name,
            **({"software_block": block} if len(block) > 1 else {}),
            "params": {k: round(v, 6) for k, v in values.items()},
            "ranges": {n: [s.low, s.high] for n, s in zip(self.names, self.specs, strict=True)},
            **extra,
        }

    def save_sidecar(self, path: str | Path, params_row: Tensor | Sequence[float], **extra: Any) -> Path:
        """Write a readable JSON sidecar (indented, one slider per line)."""
        return write_sidecar(path, self.sidecar(params_row, **extra))

    def load_sidecar(self, path: str | Path) -> Tensor:
        """Read a sidecar written by :meth:`save_sidecar` (or a plain ``{name: value}`` JSON object).

        Raises:
            DataError: unreadable file, or a sidecar written for another software.
            ParameterError: unknown names or out-of-range values.
        """
        data = read_sidecar(path)
        software = data.get("software")
        if software is not None and software != self.software_name:
            raise DataError(
                f"{path}: this sidecar was written for software {software!r}, not {self.software_name!r} "
                f"(use --software {software})."
            )
        block = data.get("software_block")
        if block is not None and block != self.block():
            raise DataError(
                f"{path}: this sidecar was written for the software {block}, not {self.block()} "
                "(leave --software out and zoo edit builds the sidecar's own)."
            )
        return self.from_dict(data["params"])

    def extra_repr(self) -> str:
        return f"name={self.software_name!r}, K={self.K}"


def operator_slots(op: type[Operator] | Operator) -> list[str]:
    """Slot names of an editing operator class (or instance), from its declared ``params``: ``op`` or ``op.slot``.

    Example:
        >>> from zoo.editing.kosugi import Clarity
        >>> operator_slots(Clarity)
        ['clarity']
    """
    cls = op if inspect.isclass(op) else type(op)
    name = getattr(cls, "__zoo_name__", cls.__name__.lower())
    specs = cls.params
    if len(specs) == 1 and not specs[0].name:
        return [name]
    return [f"{name}.{p.name}" for p in specs]


def software_slots(block: Mapping[str, Any] | str | Software) -> list[str]:
    """The slider names (in parameter order, K of them) of a software block, without building it.

    Reads the operators from the software class (:meth:`Software.operator_names`) and each operator's declared
    ``params``: no module is built and no tensor is allocated, so ``zoo recipe check`` can compare a slider
    generator with its software before training. Equal to the built software's ``names``.

    Args:
        block: a software name, a block ``{name: ..., <params>}``, or an already-built :class:`Software`.

    Returns:
        The K slot names, e.g. ``['exposure', 'contrast', ...]`` for ``lightroom_basic`` (K = 12).

    Raises:
        UnknownComponentError: an unknown software or editor name.
        ParameterError: a registered software that is not a :class:`Software` subclass, or that does not declare
            its operators.

    Example:
        >>> software_slots({"name": "editor_chain", "operators": ["exposure", "saturation"]})
        ['exposure', 'saturation']
        >>> len(software_slots("lightroom_basic"))
        12
    """
    if isinstance(block, Software):
        return list(block.names)
    from zoo.contracts import block_params

    cls, params = block_params("software", block)
    name = block if isinstance(block, str) else block.get("name")
    if not (inspect.isclass(cls) and issubclass(cls, Software)):
        raise ParameterError(
            f"software {name!r} is not a zoo.editing.software.Software subclass, so its sliders cannot be read "
            "without building it."
        )
    slots: list[str] = []
    for op in cls.operator_names(params):
        slots.extend(operator_slots(get("editor", op) if isinstance(op, str) else op))
    return slots


def write_sidecar(path: str | Path, content: Mapping[str, Any]) -> Path:
    """Write a sidecar dict (see :meth:`Software.sidecar`) as indented JSON."""
    path = Path(path)
    path.write_text(json.dumps(dict(content), indent=2) + "\n", encoding="utf-8")
    return path


def software_for_sidecar(path: str | Path, default: str = "lightroom_basic") -> Software:
    """Build the software a sidecar was written for (its ``software_block``, else its ``software`` name, else
    ``default``)."""
    data = read_sidecar(path)
    block = data.get("software_block") or data.get("software") or default
    return create("software", block, where=f"{path}: software")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """Read a sidecar; returns a dict with at least ``params`` (and ``software`` when recorded)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"Cannot read the sidecar {path}: {exc}.") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a sidecar is a JSON object, got {type(data).__name__}.")
    if "params" not in data:  # a plain {name: value} file
        data = {"params": data}
    if not isinstance(data["params"], dict):
        raise DataError(f"{path}: 'params' must be an object of name: value pairs.")
    return data


# ----------------------------------------------------------------------------------------------- registered


@register("software", "lightroom_basic", paper="Kosugi & Yamasaki, AAAI 2020", tags=("rl_edit", "lightroom"))
class LightroomBasic(Software):
    """The reference editor's 12 Lightroom "Basic panel" sliders in [-1, 1], in its order (K = 12).

    Args:
        clarity_method: bilateral path of the clarity slider: "auto" (exact OpenCV taps up to radius 8, i.e.
            long side < 288 px; bilateral grid above), "exact" or "grid".
    """

    def __init__(self, clarity_method: str = "auto") -> None:
        from zoo.editing.kosugi import KOSUGI_ORDER, Clarity

        ops: list[str | Operator] = [Clarity(clarity_method) if n == "clarity" else n for n in KOSUGI_ORDER]
        super().__init__(ops, name="lightroom_basic")
        self.clarity_method = clarity_method

    def block(self) -> dict[str, Any]:
        return {
            "name": self.software_name,
            **({"clarity_method": self.clarity_method} if self.clarity_method != "auto" else {}),
        }

    @classmethod
    def operator_names(cls, params: Mapping[str, Any]) -> list[str]:
        from zoo.editing.kosugi import KOSUGI_ORDER

        return list(KOSUGI_ORDER)

    def apply(self, images: Tensor, params: Tensor) -> Tensor:
        """Edit a batch (see :meth:`Software.apply`).

        Without autograd (``torch.no_grad`` / ``inference_mode``, or inputs that do not require grad) this runs
        the fused, cache-chunked path of :mod:`zoo.editing.fused` (same maths, several times faster); with
        gradients it runs the operator chain.
        """
        needs_grad = any(isinstance(t, Tensor) and t.requires_grad for t in (images, params))
        if torch.is_grad_enabled() and needs_grad:
            return super().apply(images, params)
        return self.apply_fused(images, params)

    def apply_fused(self, images: Tensor, params: Tensor) -> Tensor:
        """The fused inference path (:func:`zoo.editing.fused.lightroom_fused`), never differentiable."""
        from zoo.editing.fused import lightroom_fused

        check_images(images, f"software {self.software_name!r}")
        p = self.check_params(params, images.shape[0], images)
        with torch.no_grad():
            return lightroom_fused(images, p, self.clarity_method)

    def apply_chain(self, images: Tensor, params: Tensor) -> Tensor:
        """The operator-by-operator chain (the autograd path), whatever the grad mode."""
        return super().apply(images, params)


@register("software", "lightroom_local", tags=("rl_edit", "lightroom", "local"))
class LightroomLocal(Software):
    """``local_contrast`` (CLAHE of the HSV value, blended by one slider) on the input, then the 10 global tone and
    colour sliders of ``lightroom_basic`` in its order (K = 11; slot 0 is ``local_contrast``).

    The local step comes first because CLAHE works best on the photo as taken: on the 64 DICM photos, CLAHE (Lab L)
    then a gamma to mean 0.45 scores NIQE 3.66, the gamma first then CLAHE 3.84. ``dehaze`` and ``clarity`` are left
    out: they are local filters whose effect at full resolution a 64 x 64 critic cannot judge (as in
    ``rl_edit_demo``), and CLAHE takes their place.

    Args:
        clip_limit: CLAHE's contrast limit.
        grid: CLAHE tiles per side.
        channel: what CLAHE equalises: ``"value"`` (HSV V) or ``"lightness"`` (Lab L).
    """

    LOCAL_FILTERS = ("dehaze", "clarity")  # the lightroom_basic sliders left out

    @classmethod
    def global_sliders(cls) -> list[str]:
        """The ``lightroom_basic`` sliders kept, in its order."""
        from zoo.editing.kosugi import KOSUGI_ORDER

        return [n for n in KOSUGI_ORDER if n not in cls.LOCAL_FILTERS]

    def __init__(self, clip_limit: float = 6.0, grid: int = 8, channel: str = "value") -> None:
        from zoo.editing.local import LocalContrast

        super().__init__([LocalContrast(clip_limit, grid, channel), *self.global_sliders()], name="lightroom_local")
        self.clip_limit, self.grid, self.channel = float(clip_limit), int(grid), channel

    def block(self) -> dict[str, Any]:
        given = {"clip_limit": self.clip_limit, "grid": self.grid, "channel": self.channel}
        defaults = {"clip_limit": 6.0, "grid": 8, "channel": "value"}
        return {"name": self.software_name, **{k: v for k, v in given.items() if v != defaults[k]}}

    @classmethod
    def operator_names(cls, params: Mapping[str, Any]) -> list[str]:
        return ["local_contrast", *cls.global_sliders()]


@register("software", "exposure_filters", paper="Hu et al., ACM TOG 2018", tags=("exposure",))
class ExposureFilters(Software):
    """Hu et al.'s differentiable filters (exposure, gamma, white balance, tone curve, colour curves, B&W mix)."""

    def __init__(self) -> None:
        from zoo.editing.exposure import EXPOSURE_ORDER

        super().__init__(list(EXPOSURE_ORDER), name="exposure_filters")

    @classmethod
    def operator_names(cls, params: Mapping[str, Any]) -> list[str]:
        from zoo.editing.exposure import EXPOSURE_ORDER

        return list(EXPOSURE_ORDER)


@register("software", "editor_chain")
class EditorChain(Software):
    """Any ordered list of registered editors as one software (e.g. a subset of the Lightroom sliders).

    Args:
        operators: editor names, applied in this order.
    """

    def __init__(self, operators: list[str] = ["exposure", "contrast", "saturation"]) -> None:  # noqa: B006
        for op in operators:
            if not isinstance(op, str):
                raise ParameterError(f"software 'editor_chain': operators are editor names, got {op!r}.")
        super().__init__(list(operators), name="editor_chain")
        self.operators = list(operators)

    def block(self) -> dict[str, Any]:
        return {"name": self.software_name, "operators": list(self.operators)}
