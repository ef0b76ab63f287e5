"""The studio's state, without any HTTP: the model, the sessions (one per browser tab), their photos and edits.

Per photo, on upload: the header is probed first (a non-image or a decompression bomb is refused before any
pixel is decoded), then the full-resolution image is decoded once (one photo at a time, under a lock, so memory
stays bounded by the largest allowed photo), the model's proposal is computed on it (as ``zoo enhance`` would),
and only a preview (long side :data:`PREVIEW_SIDE`) is kept in memory. Slider moves edit the preview; export
replays the sliders on the full-resolution file through :func:`zoo.inference.edit_file`, the code path of
``zoo edit``.

Files live in a private temporary folder (mode 0700) that :meth:`Studio.close` removes. No file path is ever
built from a request: sessions, photos and exported files are looked up by random ids in dictionaries.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import DataError, InputError, ZooError

log = logging.getLogger("zoo.studio")

PREVIEW_SIDE = 512  # the long side of the preview the sliders edit (the filters' reference scale, see DESIGN)
MAX_UPLOAD_BYTES = 256 * 2**20
MAX_PHOTOS_PER_SESSION = 64
MAX_SESSIONS = 64
PREVIEW_JPEG_QUALITY = 90
Mode = Literal["sliders", "before_after", "editor"]


class UploadTooLarge(DataError):
    """An upload over the byte limit (HTTP 413)."""


class NotFound(ZooError):
    """An unknown session, photo or file id (HTTP 404)."""


# ----------------------------------------------------------------------------------------------- model


@dataclasses.dataclass
class StudioModel:
    """What the page works with: a software (the sliders) and, optionally, a generator.

    Attributes:
        mode: ``"sliders"`` (a slider generator proposes, the person adjusts), ``"before_after"`` (a generator
            without sliders: its output only), ``"editor"`` (no model: sliders from neutral).
        software: the ``zoo.editing.software.Software`` whose sliders the page shows (``None`` in before/after).
        generator: the generator in eval mode, or ``None``.
        description: where the model came from (recorded in sidecars).
        name: the generator's registered name (or ``None``).
        reason: a sentence for the page (why before/after only, or that no model is loaded).
    """

    mode: Mode
    software: Any
    generator: nn.Module | None
    description: str
    name: str | None
    reason: str


def _generator_name(generator: nn.Module, recipe: Mapping[str, Any] | None) -> str:
    block = ((recipe or {}).get("model") or {}).get("generator")
    if isinstance(block, Mapping) and "name" in block:
        return str(block["name"])
    if isinstance(block, str):
        return block
    return str(getattr(type(generator), "__zoo_name__", type(generator).__name__))


def studio_model(
    generator: nn.Module | None = None,
    *,
    software: str | Mapping[str, Any] | None = None,
    description: str = "",
    recipe: Mapping[str, Any] | None = None,
) -> StudioModel:
    """Decide what the page shows for a generator (or none).

    Args:
        generator: a zoo generator, or ``None`` for the plain slider editor.
        software: the software (name or block) of the plain editor; default ``lightroom_basic``. With a slider
            generator it must be the generator's own software (or ``None``).
        description: where the model came from.
        recipe: the model's recipe dict (for its registered name).

    Returns:
        A :class:`StudioModel`.

    Raises:
        InputError: ``software`` given for a generator that brings its own (or for one without sliders).

    >>> studio_model(None).mode
    'editor'
    """
    from zoo.registry import create

    if generator is None:
        sw = create("software", software or "lightroom_basic", where="--software")
        reason = f"No model loaded: a plain slider editor over {sw.software_name!r}, starting from neutral."
        return StudioModel("editor", sw, None, description or "no model", None, reason)
    generator = generator.eval()
    name = _generator_name(generator, recipe)
    own = getattr(generator, "software", None)
    if own is not None:
        if software is not None and software != own.software_name:
            raise InputError(
                f"--software {software!r}: the model {name!r} drives its own software {own.software_name!r}; "
                "--software applies only when no model is given."
            )
        reason = f"{name} proposes the {own.K} sliders of {own.software_name!r}; move them to adjust its proposal."
        # the page's edits and exports run on the CPU, as zoo edit does (the generator may sit on a GPU)
        return StudioModel("sliders", copy.deepcopy(own).cpu().eval(), generator, description, name, reason)
    if software is not None:
        raise InputError(f"--software {software!r}: the model {name!r} has no sliders, so no software applies.")
    reason = (
        f"{name} is not a slider generator: it maps pixels to pixels and yields no slider values, so this page "
        "shows its output before/after only (zoo enhance writes its full-resolution results)."
    )
    return StudioModel("before_after", None, generator, description, name, reason)


def propose(generator: nn.Module, images: Tensor) -> Tensor:
    """The generator's slider values for ``images`` (argmax for a policy: the generator is in eval mode).

    Uses :meth:`zoo.contracts.SliderGenerator.propose` when the generator has it, else the ``params`` its
    forward returns.

    Args:
        generator: a slider generator in eval mode (on any device).
        images: ``N x 3 x H x W`` float in [0, 1], any size (moved to the generator's device).

    Returns:
        ``N x K`` float32 slider values on the CPU.

    >>> from zoo.registry import create
    >>> propose(create("generator", "rl_editor").eval(), torch.rand(1, 3, 40, 60)).shape
    torch.Size([1, 12])
    """
    images = images.to(_device(generator))
    with torch.inference_mode():
        fn = getattr(generator, "propose", None)
        if callable(fn):
            return fn(images).detach().float().cpu()
        decide = getattr(generator, "decide", None)  # rl_editor before it adopted SliderGenerator: no edit needed
        out = decide(images, deterministic=True) if callable(decide) else generator(images)
        return out["params"].detach().float().cpu()


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


# ----------------------------------------------------------------------------------------------- images


def preview_size(height: int, width: int, side: int = PREVIEW_SIDE) -> tuple[int, int]:
    """``(h, w)`` with the long side at most ``side``, aspect kept (never enlarged).

    >>> preview_size(3000, 4000)
    (384, 512)
    """
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def downscale(image: Tensor, side: int = PREVIEW_SIDE) -> Tensor:
    """Area-average an image down to the preview size (a copy; never enlarged).

    Args:
        image: ``N x 3 x H x W`` float in [0, 1].
        side: the preview's long side.

    Returns:
        ``N x 3 x h x w`` with ``(h, w) = preview_size(H, W, side)``.

    >>> downscale(torch.rand(1, 3, 3000, 4000)).shape
    torch.Size([1, 3, 384, 512])
    """
    h, w = preview_size(image.shape[-2], image.shape[-1], side)
    if (h, w) == tuple(image.shape[-2:]):
        return image.clone()
    return F.interpolate(image, size=(h, w), mode="area").clamp(0.0, 1.0)


def encode_jpeg(image: Tensor, quality: int = PREVIEW_JPEG_QUALITY) -> bytes:
    """An image as JPEG bytes (8 bits, rounded like :func:`zoo.inference.write_image`).

    Args:
        image: ``1 x 3 x H x W`` or ``3 x H x W`` float in [0, 1].
        quality: JPEG quality (1-95).

    Returns:
        The encoded file.

    >>> encode_jpeg(torch.zeros(1, 3, 8, 8))[:2]
    b'\\xff\\xd8'
    """
    from PIL import Image

    x = image[0] if image.ndim == 4 else image
    arr = x.clamp(0, 1).mul(255.0).add(0.5).floor().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


_SAFE = re.compile(r"[^A-Za-z0-9._ ()+-]")


def safe_name(name: str | None) -> str:
    """A display/download name from a browser-supplied file name: last component, plain characters only.

    >>> safe_name("../../etc/pass wd.png")
    'pass wd.png'
    """
    base = (name or "").replace("\\", "/").split("/")[-1]
    base = _SAFE.sub("_", base).strip(" .")[:120]
    return base or "photo"


# ----------------------------------------------------------------------------------------------- sessions


@dataclasses.dataclass
class Photo:
    """One uploaded photo of one session."""

    id: str
    name: str
    path: Path
    width: int
    height: int
    preview: Tensor  # 1 x 3 x h x w
    proposal: Tensor | None  # K (sliders / editor modes)
    params: Tensor | None  # K: the current sliders
    before_jpeg: bytes
    after_jpeg: bytes | None = None  # before/after mode: the model's output on the preview
    exports: dict[str, Path] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Session:
    """One browser tab: its photos and their slider states."""

    id: str
    folder: Path
    photos: OrderedDict[str, Photo] = dataclasses.field(default_factory=OrderedDict)
    last_seen: float = dataclasses.field(default_factory=time.monotonic)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class Upload:
    """An upload being written into a session's private folder, refused past ``limit`` bytes."""

    def __init__(self, session: Session, name: str, path: Path, limit: int) -> None:
        self.session, self.name, self.path, self.limit = session, name, path, limit
        self.size = 0
        self._fh = open(path, "xb")  # noqa: SIM115 - closed by close() or discard()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise UploadTooLarge(f"{self.name} is larger than the upload limit of {self.limit / 2**20:.0f} MiB.")
        self._fh.write(chunk)

    def close(self) -> None:
        self._fh.close()

    def discard(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


class Studio:
    """The studio's state: one model, many sessions, a private folder.

    Args:
        model: what the page shows (see :func:`studio_model`).
        max_pixels: the largest photo accepted (default: ``zoo.data.decode``'s decompression-bomb limit).
        max_upload_bytes: the largest upload accepted.
        preview_side: long side of the previews the sliders edit.
    """

    def __init__(
        self,
        model: StudioModel,
        *,
        max_pixels: int | None = None,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        preview_side: int = PREVIEW_SIDE,
    ) -> None:
        from zoo.data.decode import DEFAULT_MAX_PIXELS

        self.model = model
        self.max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
        self.max_upload_bytes = int(max_upload_bytes)
        self.preview_side = int(preview_side)
        self.folder = Path(tempfile.mkdtemp(prefix="zoo-studio-"))  # mode 0700
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()  # the sessions dict
        self._heavy = threading.Lock()  # one full-resolution photo in memory at a time
        self.closed = False

    # ------------------------------------------------------------------------------------------- info

    def info(self) -> dict[str, Any]:
        """What the page needs to draw itself: mode, model, reason, and the sliders of the software."""
        sw = self.model.software
        sliders = []
        if sw is not None:
            for name, spec in zip(sw.names, sw.specs, strict=True):
                sliders.append(
                    {"name": name, "low": spec.low, "high": spec.high, "neutral": spec.neutral, "log": spec.log}
                )
        return {
            "mode": self.model.mode,
            "model": self.model.description,
            "generator": self.model.name,
            "reason": self.model.reason,
            "software": None if sw is None else sw.software_name,
            "sliders": sliders,
            "preview_side": self.preview_side,
            "max_pixels": self.max_pixels,
            "max_upload_bytes": self.max_upload_bytes,
        }

    # ------------------------------------------------------------------------------------------- sessions

    def new_session(self) -> Session:
        """A new session with its own folder; the least recently used one goes when there are too many."""
        sid = secrets.token_urlsafe(16)
        folder = self.folder / f"s-{secrets.token_hex(8)}"
        folder.mkdir(mode=0o700)
        session = Session(sid, folder)
        with self._lock:
            self.sessions[sid] = session
            while len(self.sessions) > MAX_SESSIONS:
                _, old = self.sessions.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
                log.info("session %s... closed (the %d most recent are kept)", old.id[:6], MAX_SESSIONS)
        return session

    def session(self, sid: str) -> Session:
        with self._lock:
            session = self.sessions.get(sid)
            if session is None:
                raise NotFound("Unknown session (it expired or the server restarted): reload the page.")
            self.sessions.move_to_end(sid)
        session.last_seen = time.monotonic()
        return session

    def photo(self, sid: str, pid: str) -> Photo:
        session = self.session(sid)
        photo = session.photos.get(pid)
        if photo is None:
            raise NotFound("Unknown photo in this session: upload it again.")
        return photo

    # ------------------------------------------------------------------------------------------- photos

    def add_photo(self, sid: str, name: str | None, chunks: Iterable[bytes]) -> Photo:
        """Store an upload (byte chunks), decode it once, propose, keep its preview.

        Raises:
            UploadTooLarge: more than ``max_upload_bytes``.
            DataError: not an image, or over ``max_pixels`` (nothing is kept).
        """
        upload = self.start_upload(sid, name)
        try:
            for chunk in chunks:
                upload.write(chunk)
        except BaseException:
            upload.discard()
            raise
        return self.finish_upload(upload)

    def start_upload(self, sid: str, name: str | None) -> Upload:
        """Open a new file in the session's private folder for an upload (see :class:`Upload`)."""
        session = self.session(sid)
        if len(session.photos) >= MAX_PHOTOS_PER_SESSION:
            raise InputError(
                f"This page already holds {MAX_PHOTOS_PER_SESSION} photos; reload it to start a new session."
            )
        return Upload(session, safe_name(name), session.folder / f"u-{secrets.token_hex(8)}", self.max_upload_bytes)

    def finish_upload(self, upload: Upload) -> Photo:
        """Decode a complete upload and add it to its session (the file is removed if it is not a usable image)."""
        try:
            upload.close()
            if upload.size == 0:
                raise DataError(f"{upload.name} is empty.")
            photo = self._ingest(secrets.token_urlsafe(12), upload.name, upload.path)
        except BaseException:
            upload.discard()
            raise
        with upload.session.lock:
            upload.session.photos[photo.id] = photo
        log.info("photo %s (%d x %d, %.1f MB) added", photo.name, photo.width, photo.height, upload.size / 1e6)
        return photo

    def _ingest(self, pid: str, display: str, path: Path) -> Photo:
        from zoo.data.decode import probe
        from zoo.inference import read_image

        try:
            info = probe(path, max_pixels=self.max_pixels)
        except DataError as exc:
            raise DataError(str(exc).replace(str(path), display)) from None
        with self._heavy:
            try:
                full = read_image(path, max_pixels=self.max_pixels).unsqueeze(0)
            except DataError as exc:
                raise DataError(str(exc).replace(str(path), display)) from None
            m = self.model
            proposal = None
            if m.mode == "sliders":
                proposal = propose(m.generator, full)[0]
            elif m.mode == "editor":
                proposal = m.software.neutral(1)[0].float().cpu()
            preview = downscale(full, self.preview_side)
            del full
        after = None
        if m.mode == "before_after":
            with self._heavy, torch.inference_mode():
                out = m.generator(preview.to(_device(m.generator)))
                out = out["image"] if isinstance(out, Mapping) else out
            after = encode_jpeg(out.float().cpu())
        return Photo(
            id=pid,
            name=display,
            path=path,
            width=info.width,
            height=info.height,
            preview=preview,
            proposal=proposal,
            params=None if proposal is None else proposal.clone(),
            before_jpeg=encode_jpeg(preview),
            after_jpeg=after,
        )

    def describe(self, photo: Photo) -> dict[str, Any]:
        """The JSON the page gets for a photo: size, proposal and current sliders by name."""
        sw = self.model.software
        named = (lambda t: None if t is None else sw.to_dict(t)) if sw is not None else (lambda t: None)
        return {
            "id": photo.id,
            "name": photo.name,
            "width": photo.width,
            "height": photo.height,
            "preview": list(photo.preview.shape[-2:]),
            "proposal": named(photo.proposal),
            "params": named(photo.params),
        }

    def _values(self, values: Any) -> Tensor:
        """Named slider values -> the K vector exactly as the JSON sidecar records it (so ``zoo edit`` on the
        sidecar applies the same numbers)."""
        sw = self.model.software
        if sw is None:
            raise InputError(f"{self.model.reason} There are no sliders to set.")
        if not isinstance(values, Mapping):
            raise InputError("'params' must be an object of slider name: value pairs.")
        vec = sw.from_dict(values)
        return sw.from_dict(sw.sidecar(vec)["params"])

    def edit(self, sid: str, pid: str, values: Mapping[str, float]) -> bytes:
        """Apply slider values to the preview of one photo; the session remembers them. Returns JPEG bytes."""
        photo = self.photo(sid, pid)
        vec = self._values(values)
        with torch.inference_mode():
            out = self.model.software.apply(photo.preview, vec.view(1, -1))
        photo.params = vec
        return encode_jpeg(out)

    def export(self, sid: str, pid: str, values: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Edit the full-resolution photo with ``zoo edit``'s code path; write its JSON and XMP sidecars.

        Returns:
            ``{"files": {"image": name, "json": name, "xmp": name or None}, "params": {...}, "note": str}``.
        """
        from zoo.inference import edit_file, edit_output_path, lightroom_settings, xmp_document

        session = self.session(sid)
        photo = self.photo(sid, pid)
        if values is not None:
            photo.params = self._values(values)
        if photo.params is None:
            raise InputError(f"{self.model.reason} There is nothing to export.")
        sw = self.model.software
        photo.params = self._values(sw.to_dict(photo.params))  # e.g. the raw proposal: as its sidecar records it
        folder = session.folder / f"e-{secrets.token_hex(8)}"
        folder.mkdir(mode=0o700)
        target = edit_output_path(folder, photo.name)
        with self._heavy:
            image, sidecar = edit_file(
                sw, photo.params, photo.path, target, image=target.name, source=photo.name, model=self.model.description
            )
        files = {"image": image, "json": sidecar}
        settings = lightroom_settings(sw.to_dict(photo.params))
        note = ""
        if settings:
            xmp = target.with_suffix(".xmp")
            xmp.write_text(xmp_document(settings, source=self.model.description), encoding="utf-8")
            files["xmp"] = xmp
        else:
            note = f"No XMP: none of the sliders of {sw.software_name!r} has a Lightroom equivalent."
        old = photo.exports
        photo.exports = files
        if old:
            shutil.rmtree(next(iter(old.values())).parent, ignore_errors=True)
        log.info("exported %s (%d x %d)", image.name, photo.width, photo.height)
        return {
            "files": {k: (files[k].name if k in files else None) for k in ("image", "json", "xmp")},
            "params": sw.to_dict(photo.params),
            "note": note,
        }

    def export_file(self, sid: str, pid: str, kind: str) -> Path:
        """The exported file of one kind (``image``, ``json``, ``xmp``) of a photo."""
        photo = self.photo(sid, pid)
        path = photo.exports.get(kind)
        if path is None:
            raise NotFound(f"No exported {kind!r} file for this photo: export it first.")
        return path

    # ------------------------------------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Forget every session and remove the private folder with all uploads and exports."""
        with self._lock:
            self.sessions.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.closed = True
