"""``image_folder``: unpaired source (e.g. low-light) and target (well-exposed) folders of image files."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from zoo.data.decode import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, decode_image, list_images, probe
from zoo.data.unpaired import UnpairedDataset
from zoo.errors import DataError
from zoo.registry import register


@register("dataset", "image_folder", tags=("data",))
class ImageFolder(UnpairedDataset):
    """Unpaired source and target image folders (recursive; jpg, png, bmp, tif/tiff, webp) as RGB in [0, 1].

    Every file is decoded by :func:`zoo.data.decode.decode_image` (EXIF orientation, grayscale, palette, alpha
    composited over ``alpha_background``, CMYK, 16-bit). The folders are scanned when the dataset is built
    (headers only): unreadable files and images over ``max_pixels`` are skipped and listed once in a warning
    (and in ``skipped``, which training logs to MLflow); an empty folder, or one where nothing is usable, is an
    error before training starts. A file that passes the header check but fails to decode later is skipped then,
    with a warning, and the next file is used.

    Args:
        source: folder (or list of folders) of source-domain images: what the model enhances. Relative paths
            are relative to the working directory.
        target: folder (or list of folders) of target-domain images: what enhanced images should look like.
        crop_size: random square crop (official EnlightenGAN: 320); ``None``: whole images (then every image in
            a batch must have the same size).
        load_size: first resize so the shorter side has this many pixels (keeps the aspect ratio).
        resize: finally resize to ``resize x resize`` (the RL agent's 64 x 64 thumbnails).
        hflip: random horizontal flips.
        vflip: random vertical flips.
        darken: probability of EnlightenGAN's random darkening of the source (official: 0.5); the undarkened
            source is kept under ``"source_original"``.
        darken_factor: the source is divided by a factor drawn from this range (official: 2 to 4).
        small: images whose shorter side is below ``crop_size``: ``"upscale"`` them (bicubic) or ``"skip"`` them.
        max_pixels: refuse images with more pixels (decompression-bomb guard).
        alpha_background: ``"white"`` or ``"black"``: what transparent pixels are composited over.
        extensions: file extensions to read (default: jpg, jpeg, png, bmp, tif, tiff, webp; case-insensitive).
        seed: seed of the augmentation when the dataset is indexed directly (training passes its own seeds).
    """

    component = "image_folder"

    def __init__(
        self,
        source: str | list[str],
        target: str | list[str],
        crop_size: int | None = 256,
        load_size: int | None = None,
        resize: int | None = None,
        hflip: bool = True,
        vflip: bool = False,
        darken: float = 0.0,
        darken_factor: tuple[float, float] = (2.0, 4.0),
        small: Literal["upscale", "skip"] = "upscale",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        alpha_background: Literal["white", "black"] = "white",
        extensions: list[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            seed=seed,
            load_size=load_size,
            crop_size=crop_size,
            resize=resize,
            hflip=hflip,
            vflip=vflip,
            darken=darken,
            darken_factor=darken_factor,
            upscale_small=small == "upscale",
        )
        if small not in ("upscale", "skip"):
            raise DataError(f"image_folder: small must be 'upscale' or 'skip', got {small!r}.")
        if alpha_background not in ("white", "black"):
            raise DataError(f"image_folder: alpha_background must be 'white' or 'black', got {alpha_background!r}.")
        self.max_pixels = int(max_pixels)
        self.alpha_background = alpha_background
        exts = tuple(extensions) if extensions else IMAGE_EXTENSIONS
        self.skipped: list[tuple[str, str]] = []
        min_side = crop_size if (small == "skip" and crop_size is not None and load_size is None) else None
        self.source_files = self._scan("source", source, exts, min_side)
        self.target_files = self._scan("target", target, exts, min_side)
        if self.skipped:
            shown = "; ".join(f"{p} ({why})" for p, why in self.skipped[:10])
            more = f"; and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            warnings.warn(f"image_folder: skipped {len(self.skipped)} file(s): {shown}{more}.", stacklevel=2)
        self.n_source = len(self.source_files)
        self.n_target = len(self.target_files)

    def _scan(self, role: str, folders: str | list[str], exts: Sequence[str], min_side: int | None) -> list[Path]:
        usable: list[Path] = []
        for folder in [folders] if isinstance(folders, str) else list(folders):
            usable += self._scan_one(role, folder, exts, min_side)
        if not usable:
            raise DataError(f"image_folder: no {role} folder was given.")
        return usable

    def _scan_one(self, role: str, folder: str, exts: Sequence[str], min_side: int | None) -> list[Path]:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise DataError(f"image_folder: the {role} folder {path} does not exist (or is not a folder).")
        files = list_images(path, exts)
        if not files:
            raise DataError(
                f"image_folder: the {role} folder {path} holds no images (looked recursively for {', '.join(exts)})."
            )
        usable = []
        for file in files:
            try:
                info = probe(file, self.max_pixels)
            except DataError as exc:
                self.skipped.append((str(file), str(exc)))
                continue
            if min_side is not None and min(info.width, info.height) < min_side:
                self.skipped.append((str(file), f"{info.width} x {info.height} is smaller than crop_size {min_side}"))
                continue
            usable.append(file)
        if not usable:
            reasons = "; ".join(why for _, why in self.skipped[-3:])
            raise DataError(
                f"image_folder: none of the {len(files)} file(s) in the {role} folder {path} can be used ({reasons})."
            )
        return usable

    def load_source(self, index: int) -> np.ndarray:
        return decode_image(
            self.source_files[index], alpha_background=self.alpha_background, max_pixels=self.max_pixels
        )

    def load_target(self, index: int) -> np.ndarray:
        return decode_image(
            self.target_files[index], alpha_background=self.alpha_background, max_pixels=self.max_pixels
        )
