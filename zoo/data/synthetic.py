"""``synthetic``: procedurally generated outdoor-like scenes, so training and the demo need no files at all.

Target domain: well-exposed scenes (sky gradient with an optional sun glow, distant and near hills with fractal
texture, ground, a few shaded objects: bushes, rocks, buildings with windows; light grain and vignetting),
normalised to a natural exposure. Source domain: OTHER scenes (a separate random stream), degraded the way
under-exposed photos are: exposure cut in linear light, a gamma/tone shift, a colour cast, lower contrast and
sensor noise. Everything is a deterministic function of ``(seed, domain, index)`` and the size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from zoo.contracts import DatasetContract
from zoo.data.unpaired import UnpairedDataset, sample_seed
from zoo.errors import DataError
from zoo.registry import register

_SOURCE, _TARGET = 1, 2


# ----------------------------------------------------------------------------------------------- scene


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (all in [0, 1]) to RGB float."""
    px = np.array([[[h * 179.0, s * 255.0, v * 255.0]]], dtype=np.float32).astype(np.uint8)
    return cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def _fractal(rng: np.random.Generator, h: int, w: int, octaves: int = 5, base: float = 0.5) -> np.ndarray:
    """Value noise summed over octaves: ``h x w`` in about [-1, 1] (coarse structure plus fine texture)."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    cells = 2
    for _ in range(octaves):
        grid = rng.standard_normal((cells + 1, int(cells * w / max(h, 1)) + 2)).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= base
        cells *= 2
    return out / total


def _ridge(rng: np.random.Generator, w: int, y0: float, rough: float, h: int) -> np.ndarray:
    """A hill line: the row where the hill starts, per column (smooth 1-D value noise over octaves)."""
    out = np.zeros(w, np.float32)
    amp, total, cells = 1.0, 0.0, 2
    for _ in range(5):
        knots = rng.standard_normal(cells + 1).astype(np.float32)
        out += amp * np.interp(np.linspace(0, cells, w), np.arange(cells + 1), knots).astype(np.float32)
        total += amp
        amp *= 0.5
        cells *= 2
    return (y0 + rough * out / total) * h


def render_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A well-exposed outdoor-like scene, ``height x width x 3`` float32 RGB in ``[0, 1]``."""
    h, w = height, width
    yy = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[:, None, None]
    xx = (np.arange(w, dtype=np.float32) / max(w - 1, 1))[None, :, None]

    # sky: clear blue, dusk or overcast, lighter towards the horizon
    kind = rng.choice(3, p=[0.55, 0.25, 0.2])
    if kind == 0:
        top = _hsv(rng.uniform(0.55, 0.63), rng.uniform(0.45, 0.8), rng.uniform(0.65, 0.9))
        bottom = _hsv(rng.uniform(0.52, 0.6), rng.uniform(0.1, 0.3), rng.uniform(0.85, 1.0))
    elif kind == 1:
        top = _hsv(rng.uniform(0.6, 0.72), rng.uniform(0.3, 0.6), rng.uniform(0.45, 0.7))
        bottom = _hsv(rng.uniform(0.03, 0.11), rng.uniform(0.4, 0.75), rng.uniform(0.85, 1.0))
    else:
        g = rng.uniform(0.6, 0.8)
        top = np.array([g, g, g + 0.03], np.float32)
        bottom = np.clip(top + 0.12, 0, 1)
    img = top * (1 - yy) + bottom * yy + 0.04 * _fractal(rng, h, w, 4)[..., None]
    if rng.random() < 0.5:  # sun glow
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.35), rng.uniform(0.08, 0.25)
        d2 = ((xx - cx) ** 2 + ((yy - cy) * h / w) ** 2) / r**2
        img = img + 0.35 * np.exp(-d2) * _hsv(rng.uniform(0.08, 0.15), 0.35, 1.0)

    # distant hills (hazy, bluish) then near ground (green, brown or sand), both textured
    horizon = rng.uniform(0.38, 0.62)
    rows = np.arange(h, dtype=np.float32)[:, None]
    far = _ridge(rng, w, horizon - rng.uniform(0.03, 0.12), rng.uniform(0.05, 0.12), h)
    far_col = 0.55 * _hsv(rng.uniform(0.5, 0.65), rng.uniform(0.15, 0.35), rng.uniform(0.45, 0.7)) + 0.45 * bottom
    mask = np.clip(rows - far[None, :] + 0.5, 0, 1)[..., None]
    img = img * (1 - mask) + (far_col + 0.05 * _fractal(rng, h, w, 5)[..., None]) * mask
    near = _ridge(rng, w, horizon, rng.uniform(0.02, 0.08), h)
    ground_hue = rng.choice([rng.uniform(0.2, 0.33), rng.uniform(0.06, 0.11), rng.uniform(0.11, 0.15)])
    ground = _hsv(ground_hue, rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.65))
    tex = _fractal(rng, h, w, 6, base=0.6)[..., None]
    shade = 0.85 + 0.3 * yy  # closer ground is lit more directly
    ground_img = ground * shade * (1 + 0.35 * tex) + 0.04 * _fractal(rng, h, w, 3)[..., None]
    mask = np.clip(rows - near[None, :] + 0.5, 0, 1)[..., None]
    img = img * (1 - mask) + ground_img * mask

    # objects: bushes / rocks (shaded ellipses), buildings (rectangles with windows)
    for _ in range(int(rng.integers(3, 9))):
        canvas = np.zeros((h, w), np.uint8)
        cx = int(rng.uniform(0, w))
        base_y = int(np.clip(near[min(max(cx, 0), w - 1)] + rng.uniform(0, 0.4) * (h - near.mean()), 0, h - 1))
        size = rng.uniform(0.05, 0.22) * min(h, w) * (0.6 + base_y / h)
        if rng.random() < 0.65:
            hue = rng.choice([rng.uniform(0.22, 0.4), rng.uniform(0.05, 0.12), rng.uniform(0.0, 1.0)])
            col = _hsv(hue, rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.75))
            axes = (max(int(size), 1), max(int(size * rng.uniform(0.5, 1.1)), 1))
            cv2.ellipse(canvas, (cx, base_y), axes, float(rng.uniform(-20, 20)), 0, 360, 255, -1, cv2.LINE_AA)
            light = 1.1 - 0.5 * (yy - (base_y - axes[1]) / h) / max(2 * axes[1] / h, 1e-3)
            fill = col * np.clip(light, 0.55, 1.15) * (1 + 0.25 * _fractal(rng, h, w, 5)[..., None])
        else:
            col = _hsv(rng.uniform(0, 1), rng.uniform(0.05, 0.45), rng.uniform(0.45, 0.9))
            bw, bh = max(int(size * rng.uniform(0.6, 1.4)), 2), max(int(size * rng.uniform(1.0, 2.2)), 2)
            x0, y0 = cx - bw // 2, base_y - bh
            cv2.rectangle(canvas, (x0, y0), (x0 + bw, base_y), 255, -1, cv2.LINE_AA)
            side = np.where(xx < (x0 + bw * rng.uniform(0.3, 0.7)) / w, 1.0, 0.75)
            fill = col * side * (1 + 0.08 * _fractal(rng, h, w, 4)[..., None])
            win = _hsv(rng.uniform(0.1, 0.16), rng.uniform(0.2, 0.6), rng.uniform(0.6, 0.95))
            step = max(bw // 4, 3)
            for wy in range(y0 + step // 2, base_y - step // 2, step):
                for wx in range(x0 + step // 3, x0 + bw - step // 3, step):
                    if rng.random() < 0.7:
                        y1, y2, x1, x2 = max(wy, 0), min(wy + step // 2, h), max(wx, 0), min(wx + step // 2, w)
                        if y2 > y1 and x2 > x1:
                            fill[y1:y2, x1:x2] = win
        alpha = (canvas.astype(np.float32) / 255.0)[..., None]
        img = img * (1 - alpha) + fill * alpha

    # photographic finish: slight blur, vignetting, grain; then a natural exposure
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigmaX=max(0.5, 0.002 * max(h, w)))
    vignette = 1 - rng.uniform(0.05, 0.25) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 2
    img = img * vignette + rng.normal(0, 0.008, img.shape).astype(np.float32)
    return _expose(img, rng)


def _luma(img: np.ndarray) -> np.ndarray:
    return 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]


def _expose(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale to a well-exposed look: median luma ~0.42-0.55, bright end just below clipping."""
    y = _luma(img)
    gain = rng.uniform(0.42, 0.55) / max(float(np.median(y)), 1e-3)
    gain = min(gain, 0.97 / max(float(np.percentile(y, 99.5)), 1e-3))
    return np.clip(img * gain, 0.0, 1.0).astype(np.float32)


def degrade(
    img: np.ndarray,
    rng: np.random.Generator,
    exposure: tuple[float, float] = (0.1, 0.45),
    gamma: tuple[float, float] = (1.0, 1.5),
    color_cast: float = 0.12,
    noise: float = 0.015,
) -> np.ndarray:
    """Make a well-exposed image look under-exposed: less light, a tone shift, a colour cast, noise.

    Args:
        img: ``H x W x 3`` in [0, 1].
        rng: the random stream.
        exposure: range of the factor applied to linear light (0.1 is about 3.3 stops down).
        gamma: range of an extra gamma (> 1 darkens mid-tones further).
        color_cast: per-channel gains drawn from ``1 +- color_cast`` (normalised to keep the luminance).
        noise: standard deviation of sensor noise at full scale (shot-noise-like: grows with signal).
    """
    lin = np.where(img <= 0.04045, img / 12.92, ((img + 0.055) / 1.055) ** 2.4)
    lin = lin * rng.uniform(*exposure)
    gains = 1 + rng.uniform(-color_cast, color_cast, 3).astype(np.float32)
    lin = lin * (gains / float(gains @ np.array([0.2126, 0.7152, 0.0722], np.float32)))
    out = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(np.maximum(lin, 0), 1 / 2.4) - 0.055)
    out = np.clip(out, 0, 1) ** rng.uniform(*gamma)
    mean = float(out.mean())
    out = mean + (out - mean) * rng.uniform(0.75, 1.0)  # flatter contrast
    sigma = noise * np.sqrt(np.clip(out, 1e-4, 1)) * rng.uniform(0.5, 1.0)
    out = out + sigma * rng.standard_normal(out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------- dataset


@register("dataset", "synthetic", tags=("data", "demo"))
class SyntheticScenes(UnpairedDataset):
    """Procedural unpaired data needing no files: well-exposed scenes (target) and under-exposed OTHER scenes (source).

    Scenes have a sky gradient (sometimes a sun glow), hazy distant hills, textured ground, and shaded objects
    (bushes, rocks, buildings with windows). Sources are different scenes darkened in linear light, tone-shifted,
    colour-cast and noisy. Deterministic for a given ``seed``; the demo and tests train on it.

    Args:
        size: number of scenes per domain (the dataset's length).
        height: scene height in pixels.
        width: scene width in pixels.
        seed: selects the scenes (and the augmentation when indexed directly).
        exposure: range of the exposure factor applied to the source in linear light.
        gamma: range of the extra gamma applied to the source.
        color_cast: strength of the source's colour cast (per-channel gains ``1 +- color_cast``).
        noise: sensor-noise level of the source.
        crop_size: random square crop; ``None``: whole scenes.
        load_size: resize so the shorter side has this many pixels first.
        resize: finally resize to ``resize x resize``.
        hflip: random horizontal flips.
        vflip: random vertical flips.
        darken: probability of EnlightenGAN's random darkening on top (the original is kept as ``source_original``).
        darken_factor: range of that darkening's divisor.
        cache: keep generated scenes in memory (float32, per process; about 150 kB per 96 x 128 scene).
    """

    component = "synthetic"

    def __init__(
        self,
        size: int = 256,
        height: int = 96,
        width: int = 128,
        seed: int = 0,
        exposure: tuple[float, float] = (0.1, 0.45),
        gamma: tuple[float, float] = (1.0, 1.5),
        color_cast: float = 0.12,
        noise: float = 0.015,
        crop_size: int | None = None,
        load_size: int | None = None,
        resize: int | None = None,
        hflip: bool = True,
        vflip: bool = False,
        darken: float = 0.0,
        darken_factor: tuple[float, float] = (2.0, 4.0),
        cache: bool = True,
    ) -> None:
        if size < 1:
            raise DataError(f"synthetic: size is the number of scenes per domain and must be >= 1, got {size}.")
        if height < 8 or width < 8:
            raise DataError(f"synthetic: height and width must be at least 8 pixels, got {height} x {width}.")
        if not 0 < exposure[0] <= exposure[1] <= 1:
            raise DataError(f"synthetic: exposure must satisfy 0 < low <= high <= 1, got {tuple(exposure)}.")
        if not 0 < gamma[0] <= gamma[1]:
            raise DataError(f"synthetic: gamma must satisfy 0 < low <= high, got {tuple(gamma)}.")
        super().__init__(
            seed=seed,
            load_size=load_size,
            crop_size=crop_size,
            resize=resize,
            hflip=hflip,
            vflip=vflip,
            darken=darken,
            darken_factor=darken_factor,
            upscale_small=True,
        )
        self.size, self.height, self.width = int(size), int(height), int(width)
        self.exposure, self.gamma = tuple(exposure), tuple(gamma)
        self.color_cast, self.noise = float(color_cast), float(noise)
        self.n_source = self.n_target = self.size
        self.skipped: list[tuple[str, str]] = []
        self.cache = bool(cache)
        self._scenes: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def contract(cls, params: Mapping[str, Any]) -> DatasetContract:
        """Scenes are ``height x width``: that, unless ``resize``, ``crop_size`` or ``load_size`` changes it."""
        if params.get("resize") or params.get("crop_size"):
            return super().contract(params)
        height, width = int(params.get("height", 96)), int(params.get("width", 128))
        load = params.get("load_size")
        if load:  # shorter side -> load_size, aspect kept (albumentations' SmallestMaxSize rounding)
            scale = int(load) / min(height, width)
            height, width = max(1, round(height * scale)), max(1, round(width * scale))
        return DatasetContract((height, width))

    def source_image(self, index: int, height: int | None = None, width: int | None = None) -> np.ndarray:
        """Source scene ``index`` at any size (the demo enhances these at full resolution)."""
        return self._render(_SOURCE, int(index), height or self.height, width or self.width)

    def target_image(self, index: int, height: int | None = None, width: int | None = None) -> np.ndarray:
        """Target scene ``index`` at any size."""
        return self._render(_TARGET, int(index), height or self.height, width or self.width)

    def _render(self, domain: int, index: int, height: int, width: int) -> np.ndarray:
        rng = np.random.default_rng(sample_seed(self.seed, domain, index))
        scene = render_scene(rng, height, width)
        if domain == _SOURCE:
            scene = degrade(scene, rng, self.exposure, self.gamma, self.color_cast, self.noise)
        return scene

    def _cached(self, domain: int, index: int) -> np.ndarray:
        if not self.cache:
            return self._render(domain, index, self.height, self.width)
        key = (domain, index)
        if key not in self._scenes:
            self._scenes[key] = self._render(domain, index, self.height, self.width)
        return self._scenes[key].copy()

    def load_source(self, index: int) -> np.ndarray:
        return self._cached(_SOURCE, index)

    def load_target(self, index: int) -> np.ndarray:
        return self._cached(_TARGET, index)
