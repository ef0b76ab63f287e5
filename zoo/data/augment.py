"""Augmentation through albumentations: resize, random crop, flips, and EnlightenGAN's random darkening.

All transforms work on ``H x W x 3`` float32 arrays in ``[0, 1]``. Randomness comes from the generators the
dataset hands in for each sample (see :mod:`zoo.data.unpaired`), so a sample's augmentation depends only on the
run's seed, the epoch and the sample's position: the same with 0 or 8 workers, and the same after a resume.
"""

from __future__ import annotations

import random
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.core.transforms_interface import ImageOnlyTransform
from pydantic import field_validator

from zoo.errors import ParameterError


class RandomDarken(ImageOnlyTransform):
    """EnlightenGAN's random darkening: divide the image by a factor drawn uniformly from ``factor``.

    The official code darkens the generator's input by ``randint(low_times, high_times) / 100`` (2.0 to 4.0)
    with probability 0.5; the self-feature-preserving loss still compares with the undarkened image, so the
    dataset keeps that one under ``"source_original"``.

    Args:
        factor: ``(low, high)`` with ``1 <= low <= high``; the image is divided by a value in this range.
        p: probability of darkening a sample.
    """

    class InitSchema(ImageOnlyTransform.InitSchema):
        factor: tuple[float, float]

        @field_validator("factor")
        @classmethod
        def _check(cls, value: tuple[float, float]) -> tuple[float, float]:
            low, high = value
            if not 1.0 <= low <= high:
                raise ValueError(f"factor must satisfy 1 <= low <= high, got {value}")
            return value

    def __init__(self, factor: tuple[float, float] = (2.0, 4.0), p: float = 0.5) -> None:
        super().__init__(p=p)
        self.factor = factor

    def get_params(self) -> dict[str, Any]:
        return {"divisor": self.py_random.uniform(*self.factor)}

    def apply(self, img: np.ndarray, divisor: float = 1.0, **params: Any) -> np.ndarray:
        if img.dtype == np.uint8:
            return np.clip(img.astype(np.float32) / divisor + 0.5, 0, 255).astype(np.uint8)
        return (img / divisor).astype(img.dtype, copy=False)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("factor",)


class UpscaleToMin(ImageOnlyTransform):
    """Upscale (bicubic) an image whose shorter side is below ``min_size``; larger ones pass unchanged."""

    class InitSchema(ImageOnlyTransform.InitSchema):
        min_size: int

    def __init__(self, min_size: int, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.min_size = min_size

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        h, w = img.shape[:2]
        short = min(h, w)
        if short >= self.min_size:
            return img
        scale = self.min_size / short
        size = (max(self.min_size, round(w * scale)), max(self.min_size, round(h * scale)))
        return np.clip(cv2.resize(img, size, interpolation=cv2.INTER_CUBIC), 0.0, 1.0)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("min_size",)


def geometric_pipeline(
    *,
    load_size: int | None = None,
    crop_size: int | None = None,
    resize: int | None = None,
    hflip: bool = True,
    vflip: bool = False,
    upscale_small: bool = True,
    where: str = "dataset",
) -> A.Compose:
    """The shape-changing part: ``[shorter side -> load_size] [upscale to crop] [random crop] [resize] [flips]``.

    Args:
        load_size: resize so the shorter side is this many pixels (keeps the aspect ratio).
        crop_size: random square crop of this size (``None``: no crop).
        resize: finally resize to ``resize x resize`` (e.g. the RL agent's 64 x 64 thumbnails).
        hflip / vflip: random horizontal / vertical flips (p = 0.5 each).
        upscale_small: upscale images whose shorter side is below ``crop_size`` (else the dataset skips them).
        where: component name for error messages.
    """
    for name, value in (("load_size", load_size), ("crop_size", crop_size), ("resize", resize)):
        if value is not None and value < 1:
            raise ParameterError(f"{where}: {name} must be a positive number of pixels or null, got {value}.")
    steps: list[Any] = []
    if load_size is not None:
        steps.append(A.SmallestMaxSize(max_size=load_size, interpolation=cv2.INTER_AREA))
    if crop_size is not None:
        if upscale_small:
            steps.append(UpscaleToMin(min_size=crop_size))
        steps.append(A.RandomCrop(height=crop_size, width=crop_size))
    if resize is not None:
        steps.append(A.Resize(height=resize, width=resize, interpolation=cv2.INTER_AREA))
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if vflip:
        steps.append(A.VerticalFlip(p=0.5))
    return A.Compose(steps)


def darken_pipeline(p: float, factor: tuple[float, float], where: str = "dataset") -> A.Compose | None:
    """EnlightenGAN's darkening as a one-step pipeline (``None`` when ``p`` is 0)."""
    if not 0.0 <= p <= 1.0:
        raise ParameterError(f"{where}: darken is a probability in [0, 1], got {p}.")
    if p == 0.0:
        return None
    try:
        return A.Compose([RandomDarken(factor=tuple(factor), p=p)])
    except Exception as exc:  # pydantic validation inside albumentations
        raise ParameterError(
            f"{where}: darken_factor {factor!r} is invalid: 1 <= low <= high is needed ({exc})."
        ) from None


def run(pipeline: A.Compose, image: np.ndarray, rng: np.random.Generator, py_rng: random.Random) -> np.ndarray:
    """Apply ``pipeline`` to one image with the given generators (shared by all its transforms)."""
    pipeline.set_random_state(rng, py_rng)
    out = pipeline(image=image)["image"]
    return np.ascontiguousarray(out, dtype=np.float32)
