"""The 12 Lightroom "Basic panel" sliders of Kosugi & Yamasaki's reference editor, as PyTorch operators.

"Unpaired Image Enhancement Featuring Reinforcement-Learning-Controlled Image Editing Software", AAAI 2020;
formulas from its ``edit_photo.py`` and the ``meijieru/dehaze`` submodule (documented in
``../shared/reference/kosugi/README.md``). Every slider takes one value in ``[-1, 1]``, neutral 0.

Spaces (reference order): dehaze, clarity, contrast act on ProPhoto-gamma RGB; exposure, temp, tint on its logit;
whites, blacks, highlights, shadows, vibrance, saturation on the reference's HSV of it. Filter sizes scale with
``scale = max(H, W) / 512`` and ``int()`` truncation, as the reference; where the reference's sizes truncate to 0
(long side < 35 px, where it crashes) they are raised to 1.

Each operator is a function (``dehaze(x, p)`` on the native space) and a registered module whose ``forward``
takes sRGB images (see :class:`~zoo.editing.base.Operator`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.editing.base import Operator, ParamSpec, image_scale
from zoo.editing.filters import (
    bilateral,
    bilinear_rows,
    guided_coefficients,
    guided_filter,
    guided_subsample,
    min_filter,
)
from zoo.registry import register

CHUNK_PIXELS = 1 << 15  # row chunks of the fused dehaze output pass (in cache)
PAPER = "Kosugi & Yamasaki, AAAI 2020"
TAGS = ("rl_edit", "lightroom")
SLIDER = (ParamSpec("", -1.0, 1.0, 0.0),)


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _only_active(fn, x: Tensor, amount: Tensor, **kw) -> Tensor | None:
    """Run a costly filter only on the images whose amount is non-zero (exactly the identity there anyway).

    Only without autograd (the gradient w.r.t. the amount at 0 is not zero). Returns None when not applicable.
    """
    if torch.is_grad_enabled() and (x.requires_grad or amount.requires_grad):
        return None
    active = amount != 0
    if bool(active.all()):
        return None
    out = x.clone()
    if bool(active.any()):
        out[active] = fn(x[active], amount[active], **kw)
    return out


def _col(p: Tensor) -> Tensor:
    """Per-image parameter ``N`` or ``N x 1`` -> ``N x 1 x 1 x 1``."""
    return p.reshape(-1, 1, 1, 1)


# ------------------------------------------------------------------------------------------- ProPhoto-space ops


def dehaze(x: Tensor, omega: Tensor, *, t_min: float = 0.25, ratio: float = 0.001, eps: float = 1e-4) -> Tensor:
    """Dark-channel-prior dehaze (He et al.) with guided-filter refinement, as the reference's ``AdjustDehaze``.

    ``wsize = int(15 s)``, ``radius = int(80 s)`` with ``s = max(H, W) / 512``; atmosphere = per-channel max over
    the top ``int(0.001 H W)`` dark-channel pixels (all pixels when that is 0); ``t = 1 - omega dark(img / A)``,
    refined by a guided filter on the grey image, floored at ``t_min``; ``J = (img - A) / t + A``, clipped.
    ``omega < 0`` adds haze. Memory O(HW): the dark channel is a separable min filter (doubling windows).

    Args:
        x: ProPhoto-gamma image ``N x 3 x H x W`` in [0, 1].
        omega: ``N`` strengths in [-1, 1].

    Returns:
        Dehazed image in [0, 1].
    """
    skipped = _only_active(dehaze, x, omega, t_min=t_min, ratio=ratio, eps=eps)
    if skipped is not None:
        return skipped
    n, _, h, w = x.shape
    s = image_scale(x)
    wsize, radius = max(int(15 * s), 1), max(int(80 * s), 1)
    if not _needs_grad(x, omega):
        return _dehaze_nograd(x, omega, wsize, radius, t_min, ratio, eps)
    img = x * 255.0
    dark = min_filter(img.amin(dim=1, keepdim=True), wsize)
    k = int(h * w * ratio) or h * w
    idx = dark.detach().flatten(1).topk(k, dim=1).indices  # N x k
    atm = img.flatten(2).gather(2, idx.unsqueeze(1).expand(n, 3, k)).amax(dim=2)
    atm = atm.clamp(min=1e-6).view(n, 3, 1, 1)  # an all-black image has A = 0: keep img / A finite
    t = 1.0 - _col(omega) * min_filter((img / atm).amin(dim=1, keepdim=True), wsize)
    gray = 0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3]  # cv2 BGR2GRAY weights
    t = guided_filter(t, gray, radius, eps).clamp(min=t_min)
    return ((img - atm) / t + atm).div(255.0).clamp(0.0, 1.0)


def _top_indices(dark: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` largest values of each row of ``dark`` (``N x P``), as ``topk`` (ties aside).

    For large images a threshold from a strided sample keeps only the candidates above it (a few times ``k``),
    so the exact top-k runs on those; when too few pass, the full top-k runs.
    """
    n, total = dark.shape
    step = 16
    if total < (1 << 20) or k * step * 4 > total:
        return dark.topk(k, dim=1).indices
    sample = dark[:, ::step]
    thr = sample.topk(min(sample.shape[1], 2 * (k // step) + 16), dim=1).values[:, -1:]
    rows = []
    for b in range(n):
        cand = (dark[b] >= thr[b]).nonzero().squeeze(1)
        if cand.numel() < k:
            rows.append(dark[b].topk(k).indices)
        else:
            rows.append(cand[dark[b, cand].topk(k).indices])
    return torch.stack(rows)


def _dehaze_nograd(x: Tensor, omega: Tensor, wsize: int, radius: int, t_min: float, ratio: float, eps: float) -> Tensor:
    """:func:`dehaze` without autograd: the same maths on the [0, 1] scale (the guided filter's ``eps`` rescaled
    by 255^2, which leaves its output unchanged), with fewer full-size temporaries.

    With the fast (subsampled) guided filter, only pooled images enter it (``t`` is linear in the pooled dark
    channel, the grey guide in the pooled channels), and the upsampling of its coefficients, ``a g + b``, the
    floor ``t_min`` and ``(x - A) / t + A`` run fused over cache-sized row chunks.
    """
    n, _, h, w = x.shape
    dark = min_filter(x.amin(dim=1, keepdim=True), wsize)
    k = int(h * w * ratio) or h * w
    idx = _top_indices(dark.flatten(1), k)  # N x k
    atm = x.flatten(2).gather(2, idx.unsqueeze(1).expand(n, 3, k)).amax(dim=2)
    atm = atm.clamp(min=1e-6 / 255.0).view(n, 3, 1, 1)  # an all-black image has A = 0: keep img / A finite
    inv = 1.0 / atm
    m = torch.mul(x[:, 0:1], inv[:, 0:1])
    torch.minimum(m, torch.mul(x[:, 1:2], inv[:, 1:2]), out=m)
    torch.minimum(m, torch.mul(x[:, 2:3], inv[:, 2:3]), out=m)
    dark = min_filter(m, wsize)
    sub = guided_subsample(radius)
    if sub <= 1:
        t = dark.mul_(-_col(omega)).add_(1.0)
        gray = torch.mul(x[:, 0:1], 0.299).add_(x[:, 1:2], alpha=0.587).add_(x[:, 2:3], alpha=0.114)
        t = guided_filter(t, gray, radius, eps / 255.0**2).clamp_(min=t_min)
        return torch.sub(x, atm).div_(t).add_(atm).clamp_(0.0, 1.0)
    tl = F.avg_pool2d(dark, sub, ceil_mode=True).double().mul_(-_col(omega)).add_(1.0)
    xl = F.avg_pool2d(x, sub, ceil_mode=True).double()
    gl = (0.299 * xl[:, 0:1]).add_(xl[:, 1:2], alpha=0.587).add_(xl[:, 2:3], alpha=0.114)
    hl = gl.shape[2]
    ab = guided_coefficients(tl, gl, max(int(round(radius / sub)), 1), eps / 255.0**2).to(x.dtype)
    ab = F.interpolate(ab, size=(hl, w), mode="bilinear", align_corners=False)  # along W only (H: identity)
    i0, i1, fr = bilinear_rows(hl, h)
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    rows = max(1, CHUNK_PIXELS // w)
    for b in range(n):
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            coef = ab[b].index_select(1, i0[r0:r1]).lerp_(ab[b].index_select(1, i1[r0:r1]), fr[r0:r1].view(-1, 1))
            xc = x[b, :, r0:r1]
            t = torch.mul(xc[0], 0.299).add_(xc[1], alpha=0.587).add_(xc[2], alpha=0.114)
            t.mul_(coef[0]).add_(coef[1]).clamp_(min=t_min)
            torch.sub(xc, atm[b], out=out[b, :, r0:r1]).div_(t).add_(atm[b]).clamp_(0.0, 1.0)
    return out


def clarity(x: Tensor, amount: Tensor, *, method: str = "auto") -> Tensor:
    """Local contrast: ``x + (x - bilateral(x)) * amount``, not clipped (reference ``AdjustClarity``).

    The bilateral filter runs on the 8-bit truncation of ``x`` (``d = int(32 s)``, sigmaColor 50, sigmaSpace
    ``10 s``), with straight-through gradients through the quantisation.

    Args:
        x: ProPhoto-gamma image in [0, 1].
        amount: ``N`` values in [-1, 1].
        method: bilateral path, ``"auto"`` / ``"exact"`` / ``"grid"`` (see :func:`zoo.editing.filters.bilateral`).
    """
    skipped = _only_active(clarity, x, amount, method=method)
    if skipped is not None:
        return skipped
    s = image_scale(x)
    if not _needs_grad(x, amount):  # same maths, in place
        unsharp = bilateral(torch.mul(x, 255.0).floor_(), int(32 * s), 50.0, 10.0 * s, method=method)
        return unsharp.mul_(-1.0 / 255.0).add_(x).mul_(_col(amount)).add_(x)
    v = x * 255.0
    u8 = v + (torch.floor(v) - v).detach()  # astype(uint8): truncation, straight-through gradient
    unsharp = bilateral(u8, int(32 * s), 50.0, 10.0 * s, method=method) / 255.0
    return x + (x - unsharp) * _col(amount)


def contrast(x: Tensor, amount: Tensor) -> Tensor:
    """``(x - m) (1 + amount) + m`` with ``m`` the image's global mean, clipped to [0, 1]."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - m) * (1.0 + _col(amount)) + m).clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------------- logit-space ops


def exposure(x: Tensor, amount: Tensor) -> Tensor:
    """Logit-space exposure: ``x + 5 amount`` on every channel."""
    return x + 5.0 * _col(amount)


def temp(x: Tensor, amount: Tensor) -> Tensor:
    """Colour temperature in logit space (asymmetric, as the reference).

    ``amount > 0``: G += 1.6 a, R += 2 a (warmer); ``amount < 0``: B -= 2 a, G -= a (cooler).
    """
    a = _col(amount)
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    r, g, b = x.unbind(1)
    return torch.stack([r + 2.0 * pos[:, 0], g + 1.6 * pos[:, 0] - neg[:, 0], b - 2.0 * neg[:, 0]], dim=1)


def tint(x: Tensor, amount: Tensor) -> Tensor:
    """Tint in logit space. ``amount > 0``: B += 2 a, R += a (magenta); ``amount < 0``: G -= 2 a, R -= a (green)."""
    a = _col(amount)
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    r, g, b = x.unbind(1)
    return torch.stack([r + pos[:, 0] - neg[:, 0], g - 2.0 * neg[:, 0], b + 2.0 * pos[:, 0]], dim=1)


# ------------------------------------------------------------------------------------------- HSV-space ops


def _with_v(hsv: Tensor, v: Tensor) -> Tensor:
    return torch.cat([hsv[:, :2], v], dim=1)


def _with_s(hsv: Tensor, s: Tensor) -> Tensor:
    return torch.cat([hsv[:, :1], s, hsv[:, 2:]], dim=1)


def _sqrt1p(a: Tensor) -> Tensor:
    # sqrt(a + 1); the floor keeps the gradient finite at a = -1 (value change <= 1e-6)
    return torch.sqrt((a + 1.0).clamp(min=1e-12))


def whites(hsv: Tensor, amount: Tensor) -> Tensor:
    """``v += v (sqrt(a + 1) - 1) 0.2``: moves bright tones most."""
    v = hsv[:, 2:]
    return _with_v(hsv, v + v * (_sqrt1p(_col(amount)) - 1.0) * 0.2)


def blacks(hsv: Tensor, amount: Tensor) -> Tensor:
    """``v += (1 - v) (sqrt(a + 1) - 1) 0.2``: moves dark tones most."""
    v = hsv[:, 2:]
    return _with_v(hsv, v + (1.0 - v) * (_sqrt1p(_col(amount)) - 1.0) * 0.2)


def highlights(hsv: Tensor, amount: Tensor) -> Tensor:
    """``m = sigmoid(5 (v - 1))``, ``v = 1 - (1 - v)(1 - 5 m a)``."""
    v = hsv[:, 2:]
    m = torch.sigmoid(5.0 * (v - 1.0))
    return _with_v(hsv, 1.0 - (1.0 - v) * (1.0 - 5.0 * m * _col(amount)))


def shadows(hsv: Tensor, amount: Tensor) -> Tensor:
    """``m = 1 - sigmoid(5 v)``, ``v = v (1 + 5 m a)``."""
    v = hsv[:, 2:]
    m = 1.0 - torch.sigmoid(5.0 * v)
    return _with_v(hsv, v * (1.0 + 5.0 * m * _col(amount)))


def vibrance(hsv: Tensor, amount: Tensor) -> Tensor:
    """``f = 1 - sigmoid(10 (s - 0.5))``, ``s = s (1 + a) f + s (1 - f)``: boosts muted colours most."""
    s = hsv[:, 1:2]
    f = 1.0 - torch.sigmoid(10.0 * (s - 0.5))
    return _with_s(hsv, s * (1.0 + _col(amount)) * f + s * (1.0 - f))


def saturation(hsv: Tensor, amount: Tensor) -> Tensor:
    """``s = clip(s (1 + a), 0, 1)``."""
    return _with_s(hsv, (hsv[:, 1:2] * (1.0 + _col(amount))).clamp(0.0, 1.0))


# ------------------------------------------------------------------------------------------- modules


class _Slider(Operator):
    params = SLIDER
    fn = staticmethod(lambda x, p: x)

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        return type(self).fn(x, p[:, 0])


@register("editor", "dehaze", paper=PAPER, tags=TAGS)
class Dehaze(_Slider):
    """Dark-channel-prior dehaze with guided-filter refinement (-1 adds haze, +1 removes it)."""

    space, pointwise, monotone = "prophoto", False, None
    fn = staticmethod(dehaze)


@register("editor", "clarity", paper=PAPER, tags=TAGS)
class Clarity(_Slider):
    """Clarity: local contrast against an 8-bit bilateral filter (unsharp masking with edge preservation).

    Args:
        method: bilateral path: "auto" (exact OpenCV taps up to radius 8, bilateral grid above), "exact", "grid".
    """

    space, pointwise, monotone = "prophoto", False, None

    def __init__(self, method: str = "auto") -> None:
        super().__init__()
        if method not in ("auto", "exact", "grid"):
            from zoo.errors import ParameterError

            raise ParameterError(f"editor 'clarity': method must be 'auto', 'exact' or 'grid', got {method!r}.")
        self.method = method

    def native(self, x: Tensor, p: Tensor) -> Tensor:
        return clarity(x, p[:, 0], method=self.method)


@register("editor", "contrast", paper=PAPER, tags=TAGS)
class Contrast(_Slider):
    """Global contrast around the image mean, in ProPhoto gamma, clipped."""

    space, pointwise, monotone = "prophoto", False, "spread"
    fn = staticmethod(contrast)


@register("editor", "exposure", paper=PAPER, tags=TAGS)
class Exposure(_Slider):
    """Exposure: +5 x slider in logit space (monotone brightening)."""

    space, monotone = "logit", "luminance"
    fn = staticmethod(exposure)


@register("editor", "temp", paper=PAPER, tags=TAGS)
class Temp(_Slider):
    """Colour temperature (+ warmer, - cooler) in logit space."""

    space = "logit"
    fn = staticmethod(temp)


@register("editor", "tint", paper=PAPER, tags=TAGS)
class Tint(_Slider):
    """Tint (+ magenta, - green) in logit space."""

    space = "logit"
    fn = staticmethod(tint)


@register("editor", "whites", paper=PAPER, tags=TAGS)
class Whites(_Slider):
    """Whites: scales HSV value in proportion to it (bright tones move most)."""

    space, monotone = "hsv", "bright_tones"
    fn = staticmethod(whites)


@register("editor", "blacks", paper=PAPER, tags=TAGS)
class Blacks(_Slider):
    """Blacks: lifts or lowers HSV value in proportion to 1 - v (dark tones move most)."""

    space, monotone = "hsv", "dark_tones"
    fn = staticmethod(blacks)


@register("editor", "highlights", paper=PAPER, tags=TAGS)
class Highlights(_Slider):
    """Highlights: moves HSV value through a sigmoid mask centred on white."""

    space, monotone = "hsv", "bright_tones"
    fn = staticmethod(highlights)


@register("editor", "shadows", paper=PAPER, tags=TAGS)
class Shadows(_Slider):
    """Shadows: moves HSV value through a sigmoid mask centred on black."""

    space, monotone = "hsv", "dark_tones"
    fn = staticmethod(shadows)


@register("editor", "vibrance", paper=PAPER, tags=TAGS)
class Vibrance(_Slider):
    """Vibrance: saturation change weighted towards muted colours."""

    space, monotone = "hsv", "chroma"
    fn = staticmethod(vibrance)


@register("editor", "saturation", paper=PAPER, tags=TAGS)
class Saturation(_Slider):
    """Saturation: scales HSV saturation by 1 + slider, clipped."""

    space, monotone = "hsv", "chroma"
    fn = staticmethod(saturation)


KOSUGI_ORDER = (
    "dehaze", "clarity", "contrast", "exposure", "temp", "tint",
    "whites", "blacks", "highlights", "shadows", "vibrance", "saturation",
)  # fmt: skip
