"""Full-resolution inference for any generator: load a model, enhance files and folders, write sidecars.

``zoo enhance`` and ``zoo eval`` both run through here. Per image: read (EXIF orientation applied; gray,
palette, RGBA (composited on white), CMYK and 16-bit files converted to RGB in [0, 1]), run the generator under
``torch.inference_mode`` (whole image, which lets a generator use its own path for very large photos such as
EnlightenGAN's downsample-by-2 above ``max_width``; or overlapping tiles blended with linear ramps when
``tile`` is set), write an 8-bit PNG (or JPEG), and:

- when the generator is a slider generator (:class:`zoo.contracts.SliderGenerator`: ``rl_editor``,
  ``edit_regressor``) and its output has ``"params"``, a JSON sidecar with the named slider values (the software's
  own sidecar format, so ``zoo edit`` can replay it);
- with ``xmp=True``, an XMP sidecar with Lightroom / Camera Raw ``crs:`` settings (see :func:`lightroom_settings`).

Files that cannot be read or enhanced are skipped and listed in the report; the run goes on.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.contracts import SliderGenerator
from zoo.errors import DataError, InputError, ZooError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS = 200_000_000  # the decoder's bomb guard for photos: above any camera's (a 102 MP medium format fits)


# ----------------------------------------------------------------------------------------------- files


def collect_images(inputs: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursive) into ``(image path, path relative to its input)`` pairs.

    Raises:
        DataError: an input that does not exist, or no image at all.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            pairs = [(f, f.relative_to(p)) for f in files]
        elif p.is_file():
            pairs = [(p, Path(p.name))]
        else:
            raise DataError(f"Input {p} does not exist (give image files or folders of images).")
        for f, rel in pairs:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                found.append((f, rel))
    if not found:
        exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        raise DataError(f"No images found in {', '.join(str(i) for i in inputs)} (looked for {exts}).")
    return found


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = MAX_PIXELS) -> Tensor:
    """Read an image file as ``3 x H x W`` float32 RGB in ``[0, 1]``, with the zoo's one decoder.

    Goes through :func:`zoo.data.decode.decode_image`, as training data does, so a file reads the same in
    training, ``zoo enhance``, ``zoo eval`` and ``zoo edit``: EXIF orientation applied; gray, palette and CMYK
    converted to RGB (CMYK and RGB through their embedded ICC profiles to sRGB); 16-bit PNG and TIFF at full
    precision (divided by 65535); alpha composited on white (a transparent background shows as white, as viewers
    show it).

    Args:
        path: the image file.
        max_pixels: refuse larger images (from the header, before decoding; a decompression-bomb guard).

    Returns:
        ``3 x H x W`` float32 tensor in [0, 1].

    Raises:
        DataError: the file cannot be read or decoded, or it has more than ``max_pixels`` pixels.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> f = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
        >>> Image.fromarray(np.full((2, 3), 255, np.uint8)).save(f)
        >>> read_image(f).shape, float(read_image(f).min())
        (torch.Size([3, 2, 3]), 1.0)
    """
    from zoo.data.decode import decode_image

    arr = decode_image(path, alpha_background="white", max_pixels=max_pixels)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def write_image(path: str | os.PathLike[str], image: Tensor, quality: int = 95) -> Path:
    """Write a ``3 x H x W`` (or ``1 x 3 x H x W``) image in ``[0, 1]`` as 8-bit PNG/JPEG/... (by extension)."""
    from PIL import Image

    from zoo.outputs import ensure_parent, writing

    path = Path(path)
    x = image.detach().float().cpu()
    if x.ndim == 4:
        x = x[0]
    arr = (x.clamp(0, 1).mul(255.0).add(0.5).floor().to(torch.uint8)).permute(1, 2, 0).numpy()
    ensure_parent(path)
    kwargs = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
    with writing(path):
        Image.fromarray(arr).save(path, **kwargs)
    return path


EDIT_FORMATS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def edit_output_path(out_dir: str | os.PathLike[str], source_name: str) -> Path:
    """Where ``zoo edit`` (and ``zoo studio``'s export) writes the edit of ``source_name``: same stem, same
    format when it is a common one, else PNG."""
    name = Path(source_name)
    suffix = name.suffix.lower() if name.suffix.lower() in EDIT_FORMATS else ".png"
    return Path(out_dir) / (name.stem + suffix)


def edit_file(
    software: nn.Module,
    values: Tensor,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    /,
    **extra: Any,
) -> tuple[Path, Path]:
    """Apply one slider vector to one photo at full resolution: the single code path of ``zoo edit`` and the
    export of ``zoo studio`` (so both write the same pixels for the same sidecar).

    Args:
        software: a ``zoo.editing.software.Software``.
        values: its ``K`` slider values.
        source: the photo (read with :func:`read_image`).
        target: the output image (8 bits, format by extension; see :func:`edit_output_path`).
        extra: fields recorded in the JSON sidecar written beside ``target`` (e.g. ``image``, ``source``).

    Returns:
        ``(image path, sidecar path)``.

    Raises:
        DataError: the photo cannot be decoded.
    """
    x = read_image(source)
    with torch.inference_mode():
        y = software.apply(x.unsqueeze(0), values.reshape(1, -1))
    del x
    target = write_image(target, y)
    from zoo.outputs import writing

    with writing(Path(target).with_suffix(".json")) as json_path:
        sidecar = software.save_sidecar(json_path, values, **extra)
    return target, sidecar


# ----------------------------------------------------------------------------------------------- models


@dataclasses.dataclass
class LoadedModel:
    """A generator ready for inference and where it came from."""

    generator: nn.Module
    recipe: dict[str, Any] | None
    source: str
    run_id: str | None = None
    checkpoint: Path | None = None
    tracking_uri: str | None = None


def load_model(
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    recipe: str | os.PathLike[str] | None = None,
    generator: str | Mapping[str, Any] | None = None,
    pretrained: str | None = None,
    model_uri: str | None = None,
    overrides: Sequence[str] = (),
    device: str = "auto",
    tracking_uri: str | None = None,
) -> LoadedModel:
    """Load the generator named by exactly one source.

    Sources: a checkpoint (file or run folder), an MLflow run id, a recipe (its ``model.generator`` block, random
    weights unless the block names ``weights``), a training-free registered generator (``generator="clahe"`` or a
    block; one that learns is refused with a sentence), a model shipped in the package (``pretrained=NAME``, see
    :mod:`zoo.pretrained`), or an MLflow model URI (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
    ``runs:/RUN_ID/model``; weights-only, see :mod:`zoo.model_registry`). No trainer is involved.

    Raises:
        DataError: none or several sources given, or a source that cannot be loaded.

    Example:
        >>> load_model(generator="histogram_equalization", device="cpu").source
        'generator histogram_equalization'
    """
    sources = (
        ("--checkpoint", checkpoint),
        ("--run", run_id),
        ("--recipe", recipe),
        ("--generator", generator),
        ("--pretrained", pretrained),
        ("--model", model_uri),
    )
    given = [n for n, v in sources if v]
    if len(given) != 1:
        what = "none was given" if not given else f"got {', '.join(given)}"
        raise DataError(
            "Name the model with exactly one of --checkpoint CKPT, --run RUN_ID, --recipe RECIPE, --generator NAME, "
            f"--pretrained NAME or --model models:/NAME/VERSION ({what})."
        )
    if overrides and not recipe:
        raise DataError("--set overrides apply to --recipe only (a checkpoint or run carries its own recipe).")
    from zoo.devices import resolve_device

    dev = resolve_device(device)
    if recipe:
        from zoo.recipe import load_recipe
        from zoo.registry import create

        rec = load_recipe(recipe, overrides)
        gen = create("generator", rec.model.generator, where=rec.where("model.generator"))
        return LoadedModel(gen.to(dev).eval(), rec.to_dict(), f"recipe {recipe}")
    if generator:
        from zoo.model_sources import training_free_generator

        gen = training_free_generator(generator)
        label = generator if isinstance(generator, str) and not generator.strip().startswith("{") else None
        label = label or str(dict(generator).get("name") if isinstance(generator, Mapping) else generator)
        return LoadedModel(gen.to(dev).eval(), None, f"generator {label}")
    if pretrained:
        from zoo.pretrained import load_pretrained

        gen, info = load_pretrained(pretrained)
        return LoadedModel(gen.to(dev).eval(), info.resolved_recipe(), f"pretrained {pretrained}")
    if model_uri:
        from zoo.model_registry import load_model_uri

        gen, _meta, uri_run = load_model_uri(model_uri, tracking_uri)
        source = f"MLflow model {model_uri}"
        return LoadedModel(gen.to(dev).eval(), None, source, run_id=uri_run, tracking_uri=tracking_uri)
    from zoo.checkpoint_io import load_generator

    if run_id:
        gen, rec = load_generator(run_id=run_id, device=dev, tracking_uri=tracking_uri)
        return LoadedModel(gen, rec, f"MLflow run {run_id}", run_id=run_id, tracking_uri=tracking_uri)
    gen, rec = load_generator(checkpoint=checkpoint, device=dev)
    return LoadedModel(gen, rec, f"checkpoint {checkpoint}", checkpoint=Path(checkpoint))


def checkpoint_run(checkpoint: str | os.PathLike[str]) -> tuple[str | None, str | None]:
    """The MLflow run id and tracking URI recorded in a checkpoint (``(None, None)`` when absent)."""
    from zoo.checkpoint_io import checkpoint_in, load_checkpoint

    path = checkpoint_in(Path(checkpoint)) or Path(checkpoint)
    state = load_checkpoint(path)
    return state.get("mlflow_run_id"), state.get("tracking_uri")


def prepare_for_inference(generator: nn.Module) -> nn.Module:
    """Eval mode, then :func:`zoo.layers.fuse.prepare_for_inference`: BatchNorm folded, channels_last, prepacked
    oneDNN weights (any input size; see docs/enlightengan.md for the speed against onnxruntime)."""
    generator = generator.eval()
    try:
        from zoo.layers.fuse import prepare_for_inference as _prepare
    except ImportError:  # the fusion module is optional
        return generator
    fused = _prepare(generator)
    return generator if fused is None else fused


# ----------------------------------------------------------------------------------------------- running


def _ramp(n: int, overlap: int, lo_edge: bool, hi_edge: bool) -> Tensor:
    """1-D blending weights of one tile: linear ramps over ``overlap`` pixels on interior sides."""
    w = torch.ones(n)
    k = min(overlap, n // 2)
    if k > 0:
        ramp = (torch.arange(k, dtype=torch.float32) + 0.5) / k
        if not lo_edge:
            w[:k] = ramp
        if not hi_edge:
            w[n - k :] = ramp.flip(0)
    return w


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def run_generator(
    generator: nn.Module,
    image: Tensor,
    *,
    tile: int | None = None,
    overlap: int = 32,
) -> dict[str, Tensor]:
    """Run a generator on one image at full resolution.

    Args:
        generator: a zoo generator in eval mode (``forward(x) -> {"image": ...}``).
        image: ``3 x H x W`` or ``1 x 3 x H x W`` in [0, 1], on the generator's device.
        tile: None runs the whole image at once (the generator's own large-photo path applies); an integer
            runs overlapping ``tile x tile`` tiles and blends them (bounded memory). Generators that edit
            globally (their output has ``params``) always see the whole image.
        overlap: pixels shared by neighbouring tiles.

    Returns:
        The generator's output dict for the whole image (``image`` 1 x 3 x H x W; ``params`` when present;
        other per-pixel extras only when the image was not tiled).
    """
    x = image.unsqueeze(0) if image.ndim == 3 else image
    h, w = x.shape[-2:]
    global_editor = isinstance(generator, SliderGenerator)  # a global edit: the whole image decides the sliders
    if getattr(generator, "zoo_fused", False) and not global_editor:
        x = x.contiguous(memory_format=torch.channels_last)  # fused convolutions are channels_last
    with torch.inference_mode():
        if tile is None or global_editor or (h <= tile and w <= tile):
            out = generator(x)
            out = out if isinstance(out, Mapping) else {"image": out}
            _check_output(out, x)
            return dict(out)
        if tile < 2 * overlap + 16:
            raise InputError(
                f"--tile {tile} is too small for an overlap of {overlap} px (use at least {2 * overlap + 16})."
            )
        acc = torch.zeros_like(x)
        wsum = torch.zeros((1, 1, h, w), dtype=x.dtype, device=x.device)
        ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
        for y0 in ys:
            for x0 in xs:
                th, tw = min(tile, h), min(tile, w)
                patch = x[..., y0 : y0 + th, x0 : x0 + tw]
                out = generator(patch)
                out = out if isinstance(out, Mapping) else {"image": out}
                _check_output(out, patch)
                wy = _ramp(th, overlap, y0 == 0, y0 + th >= h).to(x)
                wx = _ramp(tw, overlap, x0 == 0, x0 + tw >= w).to(x)
                wt = (wy[:, None] * wx[None, :])[None, None]
                acc[..., y0 : y0 + th, x0 : x0 + tw] += out["image"] * wt
                wsum[..., y0 : y0 + th, x0 : x0 + tw] += wt
        return {"image": (acc / wsum).clamp(0, 1)}


def _check_output(out: Mapping[str, Tensor], x: Tensor) -> None:
    img = out.get("image")
    if not isinstance(img, Tensor) or img.shape != x.shape:
        got = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
        raise InputError(
            f"The generator returned image {got} for an input of {tuple(x.shape)}; a zoo generator must return "
            "{'image': N x 3 x H x W} of the input's size."
        )


# ----------------------------------------------------------------------------------------------- sidecars

# Lightroom / Camera Raw (process 2012+) names and ranges for the reference's 12 sliders, all in [-1, 1].
_LR_PERCENT = {
    "contrast": "Contrast2012",
    "highlights": "Highlights2012",
    "shadows": "Shadows2012",
    "whites": "Whites2012",
    "blacks": "Blacks2012",
    "vibrance": "Vibrance",
    "saturation": "Saturation",
    "clarity": "Clarity2012",
    "dehaze": "Dehaze",
    "temp": "IncrementalTemperature",
    "tint": "IncrementalTint",
}
MID_GREY = 0.18


def exposure_to_ev(p: float) -> float:
    """Lightroom exposure (EV, clamped to +-5) equivalent to the reference's exposure slider ``p``.

    The reference adds ``5 p`` in logit space of the ProPhoto gamma-1.8 encoding, which is not a fixed number
    of stops (it lifts shadows far more than highlights). We report the stops it moves 18 % grey by:
    ``log2(sigmoid(logit(0.18^(1/1.8)) + 5 p)^1.8 / 0.18)``; e.g. p = 0.25 gives +1.5 EV, p = 1 gives +2.5 EV,
    p = -0.25 gives -2.4 EV.
    """
    g = MID_GREY ** (1 / 1.8)
    z = math.log(g / (1 - g)) + 5.0 * float(p)
    lin = (1.0 / (1.0 + math.exp(-z))) ** 1.8
    return max(-5.0, min(5.0, math.log2(max(lin, 1e-12) / MID_GREY)))


def lightroom_settings(values: Mapping[str, float]) -> dict[str, str]:
    """Map the reference's named slider values (each in [-1, 1]) to Lightroom ``crs:`` XMP settings.

    Mapping (documented in docs/evaluation.md): ``exposure`` -> ``Exposure2012`` in EV via
    :func:`exposure_to_ev`; every other slider -> ``round(100 p)`` on Lightroom's -100..+100 scale:
    contrast, highlights, shadows, whites, blacks -> ``*2012``; clarity -> ``Clarity2012``; dehaze, vibrance,
    saturation -> same names; temp/tint -> ``IncrementalTemperature`` / ``IncrementalTint`` (offsets, as
    Lightroom writes for non-raw files; positive = warmer / more magenta, the reference's directions).
    Names the mapping does not know are left out.
    """
    out: dict[str, str] = {}
    if "exposure" in values:
        out["Exposure2012"] = f"{exposure_to_ev(values['exposure']):+.2f}"
    for name, key in _LR_PERCENT.items():
        if name in values:
            v = int(round(max(-1.0, min(1.0, float(values[name]))) * 100))
            out[key] = f"{v:+d}" if v else "0"
    return out


def xmp_document(settings: Mapping[str, str], *, source: str | None = None) -> str:
    """An XMP packet with Camera Raw settings that Lightroom, Camera Raw, darktable and RawTherapee can read."""
    from xml.sax.saxutils import quoteattr

    attrs = {
        "crs:Version": "15.0",
        "crs:ProcessVersion": "11.0",
        "crs:HasSettings": "True",
        **({"crs:WhiteBalance": "Custom"} if "IncrementalTemperature" in settings else {}),
        **{f"crs:{k}": v for k, v in settings.items()},
    }
    if source:
        attrs["xmp:CreatorTool"] = f"enhance-zoo ({source})"
    lines = "\n".join(f"    {k}={quoteattr(v)}" for k, v in attrs.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="enhance-zoo">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"\n'
        f"{lines}/>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>\n'
    )


def write_sidecars(
    generator: nn.Module,
    out: Mapping[str, Tensor],
    image_path: Path,
    *,
    xmp: bool,
    source: str,
    input_path: Path,
) -> list[Path]:
    """Write the JSON (and XMP) sidecars of one enhanced image when a slider generator reports its values.

    Any :class:`zoo.contracts.SliderGenerator` (``rl_editor``, ``edit_regressor``, a plugin's) whose output has
    ``"params"`` gets them, in its software's sidecar format.
    """
    params = out.get("params")
    if not isinstance(generator, SliderGenerator) or params is None:
        return []
    software = generator.software
    row = params.reshape(params.shape[0], -1)[0].detach().cpu()
    extra = {"source_image": str(input_path), "model": source}
    from zoo.outputs import writing

    written = []
    json_path = image_path.with_suffix(".json")
    with writing(json_path):
        if hasattr(software, "save_sidecar"):
            software.save_sidecar(json_path, row, **extra)
        else:
            import json

            content = {
                "software": getattr(software, "software_name", type(software).__name__),
                "params": software.to_dict(row),
                **extra,
            }
            json_path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    written.append(json_path)
    if xmp:
        settings = lightroom_settings(software.to_dict(row))
        if settings:
            xmp_path = image_path.with_suffix(".xmp")
            with writing(xmp_path):
                xmp_path.write_text(xmp_document(settings, source=source), encoding="utf-8")
            written.append(xmp_path)
    return written


# ----------------------------------------------------------------------------------------------- batch


@dataclasses.dataclass
class EnhanceReport:
    """What :func:`enhance_files` did."""

    outputs: list[Path] = dataclasses.field(default_factory=list)
    inputs: list[Path] = dataclasses.field(default_factory=list)
    sidecars: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[tuple[Path, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


def output_path(out_dir: Path, rel: Path, fmt: str) -> Path:
    """Where the enhanced version of ``rel`` goes: same relative path, extension by ``fmt`` (``same`` keeps it)."""
    ext = rel.suffix if fmt == "same" else "." + fmt.lstrip(".").lower()
    return out_dir / rel.with_suffix(ext)


def enhance_files(
    generator: nn.Module,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    tile: int | None = None,
    overlap: int = 32,
    xmp: bool = False,
    fmt: str = "png",
    source: str = "",
    progress: bool = True,
    on_image: Callable[[Path, Tensor, Tensor], None] | None = None,
) -> EnhanceReport:
    """Enhance every image of ``inputs`` (files or folders) into ``out_dir``.

    Args:
        generator: a zoo generator (put in eval mode and fused here).
        inputs: image files and folders (searched recursively; the relative layout is kept under ``out_dir``;
            inputs that would share an output keep their extension in the name, see :mod:`zoo.outputs`).
        out_dir: output folder (created). An output that would replace an input is refused before any work.
        tile: tile side for bounded-memory inference (see :func:`run_generator`).
        overlap: tile overlap in pixels.
        xmp: also write Lightroom XMP sidecars (generators that report slider values).
        fmt: output format: ``png`` (default, lossless), ``jpg``, ``tif``, ``webp`` or ``same`` as the input.
        source: a description of the model, recorded in sidecars.
        progress: show a rich progress bar (on stderr).
        on_image: called with ``(input path, input 3xHxW, output 3xHxW)`` on the CPU after each image (eval).

    Returns:
        The report: outputs, sidecars, and skipped files with the reason.
    """
    import time

    if fmt.lower().lstrip(".") not in ("png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp", "same"):
        raise InputError(f"Output format {fmt!r} is not supported (png, jpg, tif, webp, bmp or same).")
    from zoo.outputs import SIDECAR_SUFFIXES, OutputError, ensure_dir, plan_outputs, refuse_overwriting_inputs

    files = collect_images(inputs)
    out_dir = Path(out_dir)
    targets = plan_outputs(files, out_dir, lambda rel: output_path(Path(), rel, fmt).suffix)
    refuse_overwriting_inputs(targets, [p for p, _ in files], sidecars=SIDECAR_SUFFIXES)
    ensure_dir(out_dir)
    generator = prepare_for_inference(generator)
    device = next((p.device for p in generator.parameters()), torch.device("cpu"))
    report = EnhanceReport()
    t0 = time.perf_counter()
    with _progress(progress, len(files), "enhancing") as advance:
        for (path, _rel), dst in zip(files, targets, strict=True):
            try:
                img = read_image(path)
                out = run_generator(generator, img.to(device), tile=tile, overlap=overlap)
                write_image(dst, out["image"])
                report.sidecars += write_sidecars(generator, out, dst, xmp=xmp, source=source, input_path=path)
                report.outputs.append(dst)
                report.inputs.append(path)
                if on_image is not None:
                    on_image(path, img, out["image"][0].float().cpu())
            except OutputError:  # a full disk or a read-only folder fails every next file the same way
                raise
            except (ZooError, RuntimeError, OSError) as exc:  # one bad file never stops a batch
                report.skipped.append((path, _reason(exc)))
            advance(path.name)
    report.seconds = time.perf_counter() - t0
    return report


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if isinstance(exc, ZooError) else f"{type(exc).__name__}: {text}"


class _progress:
    """A rich progress bar on stderr (or nothing), used as ``with _progress(on, n, label) as advance:``."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._bar = None

    def __enter__(self) -> Callable[[str], None]:
        if not self.enabled:
            return lambda name: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[name]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total, name="")

        def advance(name: str) -> None:
            self._bar.update(task, advance=1, name=name)

        return advance

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
