"""Decode any common image file into RGB float32 in ``[0, 1]``, the way a photographer would expect.

- EXIF orientation is applied (a portrait photo stays portrait).
- Grayscale (``1``, ``L``, 16-bit ``I;16``) is replicated to three channels.
- Palette images are expanded (with their transparency, if any).
- Alpha (``RGBA``, ``LA``, ``PA``, 16-bit RGBA) is dropped by compositing the image over a background, white by
  default (``alpha_background="black"`` for black): ``rgb * a + background * (1 - a)``. Compositing, rather than
  discarding alpha, keeps transparent regions from showing whatever colour the encoder left there.
- CMYK is converted with its embedded ICC profile when it has one (littleCMS via Pillow), else with
  ``rgb = (1 - c) (1 - k)``; Adobe's inverted CMYK JPEGs are un-inverted by Pillow's decoder.
- RGB images with an embedded ICC profile are converted to sRGB.
- 16-bit PNG and TIFF (gray, RGB, RGBA) keep their full precision: Pillow would truncate 16-bit RGB to 8 bits,
  so those are decoded with OpenCV and divided by 65535.
- A pixel-count limit (``max_pixels``) refuses decompression bombs from the header, before decoding.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from zoo.errors import DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: larger than any camera photo, far below a bomb's size
_ORIENTATION_TAG = 0x0112


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What the header says (size after EXIF orientation)."""

    path: Path
    width: int
    height: int
    mode: str
    format: str | None


def list_images(folder: str | Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted, extensions case-insensitive, hidden files skipped)."""
    folder = Path(folder)
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in exts
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found)


class _NoPilBombCheck:
    """Disable Pillow's own bomb check for the duration: ours (``max_pixels``) runs from the header instead."""

    def __enter__(self) -> None:
        from PIL import Image

        self._old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None

    def __exit__(self, *exc: object) -> None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = self._old


def _orientation(im: object) -> int:
    try:
        return int(im.getexif().get(_ORIENTATION_TAG, 1))  # type: ignore[attr-defined]
    except Exception:  # broken EXIF must not make a readable image unreadable
        return 1


def probe(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read the header only: size (after EXIF orientation), mode and format.

    Raises:
        DataError: the file is not an image Pillow can identify, or it has more than ``max_pixels`` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with _NoPilBombCheck(), Image.open(path) as im:
            w, h = im.size
            mode, fmt = im.mode, im.format
            if _orientation(im) in (5, 6, 7, 8):
                w, h = h, w
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path} is not a readable image ({exc}).") from None
    _check_pixels(path, w, h, max_pixels)
    return ImageInfo(path, w, h, mode, fmt)


def _check_pixels(path: Path, w: int, h: int, max_pixels: int | None) -> None:
    if max_pixels is not None and w * h > max_pixels:
        raise DataError(
            f"{path} has {w} x {h} = {w * h / 1e6:.1f} MP, over the limit of {max_pixels / 1e6:.1f} MP "
            "(a decompression-bomb guard); if the file is genuine, raise max_pixels (a dataset parameter)."
        )


def decode_image(
    path: str | Path,
    *,
    alpha_background: str = "white",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file to an ``H x W x 3`` float32 RGB array in ``[0, 1]``.

    Args:
        path: the file (any of jpg, png, bmp, tif/tiff, webp; other formats Pillow reads work too).
        alpha_background: ``"white"`` or ``"black"``: what transparent pixels are composited over.
        max_pixels: refuse larger images (from the header, before decoding); ``None``: no limit.

    Returns:
        ``H x W x 3`` float32, C-contiguous, values in ``[0, 1]``, EXIF orientation applied.

    Raises:
        DataError: unreadable or truncated file, or too many pixels.
    """
    if alpha_background not in ("white", "black"):
        raise DataError(f"alpha_background must be 'white' or 'black', got {alpha_background!r}.")
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc}).") from None
    try:
        return _decode(data, path, alpha_background, max_pixels)
    except DataError:
        raise
    except Exception as exc:  # truncated or corrupt data surfaces as many exception types
        raise DataError(f"{path} cannot be decoded ({type(exc).__name__}: {exc}).") from None


def _decode(data: bytes, path: Path, alpha_background: str, max_pixels: int | None) -> np.ndarray:
    from PIL import Image, ImageOps

    bg = 1.0 if alpha_background == "white" else 0.0
    with _NoPilBombCheck(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's EXIF/ICC chatter; real failures raise
        im = Image.open(io.BytesIO(data))
        w, h = im.size
        _check_pixels(path, w, h, max_pixels)
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        orientation = _orientation(im)
        if _is_16bit(im, data):
            arr = _decode_16bit(data, im)
            return _finish(_apply_orientation(arr, orientation), bg)
        im.load()
        im = ImageOps.exif_transpose(im) if orientation != 1 else im
        return _finish(_pil_to_float(im), bg)


def _is_16bit(im: object, data: bytes) -> bool:
    mode = im.mode  # type: ignore[attr-defined]
    if mode.startswith("I;16") or mode == "I":
        return True
    fmt = im.format  # type: ignore[attr-defined]
    if fmt == "PNG" and mode in ("RGB", "RGBA") and len(data) > 24:
        return data[24] == 16  # IHDR bit depth
    if fmt == "TIFF" and mode in ("RGB", "RGBA"):
        bits = im.tag_v2.get(258)  # type: ignore[attr-defined]  # BitsPerSample
        return bits is not None and max(bits if isinstance(bits, tuple) else (bits,)) == 16
    return False


def _decode_16bit(data: bytes, im: object) -> np.ndarray:
    """Full-precision decode of 16-bit gray/RGB/RGBA: ``H x W x C`` float in [0, 1] (C = 1, 3 or 4), RGB order."""
    mode = im.mode  # type: ignore[attr-defined]
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im).astype(np.float32)
        return (np.clip(arr, 0, 65535) / 65535.0)[..., None]
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DataError("OpenCV could not decode the 16-bit data")
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    arr = arr.astype(np.float32) / scale
    if arr.ndim == 2:
        return arr[..., None]
    if arr.shape[2] == 3:
        return arr[..., ::-1]
    return arr[..., [2, 1, 0, 3]]


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 1..8 applied to an ``H x W x C`` array (as ``ImageOps.exif_transpose`` does)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],  # transverse
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return op(arr) if op is not None else arr


def _pil_to_float(im: object) -> np.ndarray:
    """An 8-bit-per-channel Pillow image to ``H x W x C`` float (C = 1, 3 or 4; alpha last)."""
    mode = im.mode  # type: ignore[attr-defined]
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode in ("RGB", "RGBA") and im.info.get("icc_profile"):  # type: ignore[attr-defined]
        im = _icc_to_srgb(im)
        mode = im.mode  # type: ignore[attr-defined]
    if mode == "F":
        return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)[..., None]
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")  # type: ignore[attr-defined]
    elif mode in ("LA", "PA", "La", "RGBa"):
        im = im.convert("RGBA")  # type: ignore[attr-defined]
    elif mode == "1":
        im = im.convert("L")  # type: ignore[attr-defined]
    elif mode == "L" and "transparency" in im.info:  # type: ignore[attr-defined]
        im = im.convert("RGBA")  # type: ignore[attr-defined]
    elif mode not in ("L", "RGB", "RGBA"):
        im = im.convert("RGB")  # type: ignore[attr-defined]  # YCbCr, LAB, HSV, ...
    arr = np.asarray(im, dtype=np.uint8).astype(np.float32) / 255.0
    return arr if arr.ndim == 3 else arr[..., None]


def _icc_to_srgb(im: object) -> object:
    from PIL import ImageCms

    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))  # type: ignore[attr-defined]
        dst = ImageCms.createProfile("sRGB")
        mode = im.mode  # type: ignore[attr-defined]
        return ImageCms.profileToProfile(im, src, dst, outputMode=mode)
    except Exception:  # a broken profile: use the pixels as they are (most such files are sRGB anyway)
        return im


def _cmyk_to_rgb(im: object) -> np.ndarray:
    icc = im.info.get("icc_profile")  # type: ignore[attr-defined]
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            return np.asarray(rgb, dtype=np.uint8).astype(np.float32) / 255.0
        except Exception:
            pass  # fall back to the naive formula below
    cmyk = np.asarray(im, dtype=np.uint8).astype(np.float32) / 255.0
    k = 1.0 - cmyk[..., 3:4]
    return (1.0 - cmyk[..., :3]) * k


def _finish(arr: np.ndarray, bg: float) -> np.ndarray:
    """``H x W x C`` (C = 1, 2, 3, 4) -> ``H x W x 3`` float32 in [0, 1], alpha composited over ``bg``."""
    arr = np.asarray(arr, dtype=np.float32)
    c = arr.shape[2]
    if c in (2, 4):
        alpha = arr[..., -1:]
        arr = arr[..., :-1] * alpha + bg * (1.0 - alpha)
        c -= 1
    if c == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0), dtype=np.float32)
