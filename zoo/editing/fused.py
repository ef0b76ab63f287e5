"""Fused, cache-chunked inference path of the 12-slider ``lightroom_basic`` software.

Same maths as the operator-by-operator chain (:mod:`zoo.editing.kosugi`, :mod:`zoo.editing.color`), rewritten
for speed when no gradient is needed (:meth:`LightroomBasic.apply` picks it; the chain stays the autograd path):

- thumbnails (up to 128 x 128) run the whole pipeline per group of about :data:`GROUP_PIXELS` pixels of images,
  so the filters' buffers stay in cache too;
- the pointwise stages run on chunks of about :data:`CHUNK_PIXELS` pixels (rows of one photo, or a group of
  thumbnails) with in-place ops, so the working set stays in the CPU caches and temporaries stay small;
- ``where`` with a boolean mask (slow on CPU) is replaced by exact algebra: each piecewise colour curve is
  ``P(max(x, t)) + L(min(x, t)) - const`` (the reference's pieces meet at ``t`` to within 3e-8) or a plain
  ``min`` where one piece bounds the other; powers are ``exp2(k log2 x)``;
- logit-space exposure/temp/tint collapse into one rational map: ``sigmoid(logit(y) + o) = yK / (1 + y(K - 1))``
  with ``K = exp(o)`` per image and channel;
- the HSV round trip never materialises the hue: with the hue unchanged, each channel is
  ``v' - c' (mx - ch) / d`` (``d = mx - mn + eps``), except the channel the reference's sign flags name as the
  minimum, which gets ``v' - c'`` (exactly the reference's sextant formulas, ties included);
- sliders that are exactly 0 for every image are skipped where the reference stage is an exact identity (the
  logit clamp and the HSV round trip, which are not identities, always run).

Parity with the reference fixtures is checked on this path (``tests/test_editing_parity.py``) and its agreement
with the operator chain in ``tests/test_editing_software.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.editing.color import HSV_EPS, LOGIT_EPS, PROPHOTO_TO_SRGB, SRGB_TO_PROPHOTO

CHUNK_PIXELS = 1 << 15  # 32K pixels: 3 planes of float32 plus temporaries fit a 1 MB L2
GROUP_PIXELS = 1 << 15  # thumbnails: images per group of the whole pipeline (8 at 64 x 64)
GROUP_MAX_PIXELS = 1 << 14  # images up to 128 x 128 are edited in groups
_BIG = 1e30  # (a - b) * BIG clamped to [0, 1] is the exact step [a > b] for any distinct floats in [1e-30, 2]

_T_DEC = 0.04045  # sRGB decode knee
_T_ENC = 0.04045 / 12.92  # sRGB encode knee
_P_ENC = 1.055 * _T_ENC ** (1 / 2.4) - 0.055
_M = SRGB_TO_PROPHOTO.tolist()
_MI = PROPHOTO_TO_SRGB.tolist()


def _pow_(x: Tensor, k: float) -> Tensor:
    """``x^k`` in place for ``x >= 0`` (``0 -> 0`` for ``k > 0``); exp2/log2 are much faster than pow on CPU."""
    return x.log2_().mul_(k).exp2_()


def _matrix(src: Tensor, m: list[list[float]], out: Tensor) -> Tensor:
    """``out[:, i] = sum_j m[i][j] src[:, j]`` for ``n x 3 x h x w`` chunks, for a matrix whose rows sum to 1.

    Written as ``src_i + sum_{j != i} m_ij (src_j - src_i)`` so that grey stays exactly grey (white must stay
    1.0: the clarity stage truncates ``x * 255`` to 8 bits, where 0.99999994 would become 254).
    """
    r, g, b = src[:, 0], src[:, 1], src[:, 2]
    d_rg, d_rb, d_gb = torch.sub(g, r), torch.sub(b, r), torch.sub(b, g)
    out[:, 0].copy_(r).add_(d_rg, alpha=m[0][1]).add_(d_rb, alpha=m[0][2])
    out[:, 1].copy_(g).add_(d_rg, alpha=-m[1][0]).add_(d_gb, alpha=m[1][2])
    out[:, 2].copy_(b).add_(d_rb, alpha=-m[2][0]).add_(d_gb, alpha=-m[2][1])
    return out


def _chunks(n: int, h: int, w: int):
    """Slices ``(images, rows)`` of about CHUNK_PIXELS pixels each."""
    if h * w <= CHUNK_PIXELS:
        step = max(1, CHUNK_PIXELS // (h * w))
        for i in range(0, n, step):
            yield slice(i, min(n, i + step)), slice(0, h)
    else:
        rows = max(1, CHUNK_PIXELS // w)
        for i in range(n):
            for r in range(0, h, rows):
                yield slice(i, i + 1), slice(r, min(h, r + rows))


def srgb_to_prophoto_(x: Tensor, out: Tensor) -> Tensor:
    """Reference ``Srgb2Photopro`` of a chunk ``x`` into ``out`` (``x`` is not modified)."""
    lin = torch.clamp(x, min=_T_DEC).add_(0.055).div_(1.055)  # div keeps 1 -> 1 exact (8-bit clarity input)
    _pow_(lin, 2.4)
    # x <= knee: P(knee) + (x - knee) / 12.92 = x / 12.92 (the two pieces meet to within 2.3e-9)
    lin.add_(torch.clamp(x, max=_T_DEC).sub_(_T_DEC), alpha=1 / 12.92)
    _matrix(lin, _M, out).clamp_(0.0, 1.0)
    lin = torch.mul(out, 16.0)
    # x^(1/1.8) (concave) and 16 x meet at 1/512: the reference's piecewise curve is their minimum
    return torch.minimum(_pow_(out, 1 / 1.8), lin, out=out)


def prophoto_to_srgb_(x: Tensor, out: Tensor) -> Tensor:
    """Reference ``Photopro2Srgb`` of a chunk ``x`` (any reals; overwritten) into ``out``, clipped to [0, 1]."""
    t = 1.0 / 32.0  # x^1.8 and x / 16 meet exactly at 1/32 (both 2^-9)
    hi = _pow_(torch.clamp(x, min=t), 1.8)
    x.clamp_(max=t).sub_(t).mul_(1 / 16.0).add_(hi)
    _matrix(x, _MI, out).clamp_(0.0, 1.0)
    hi = _pow_(torch.clamp(out, min=_T_ENC), 1 / 2.4).mul_(1.055).add_(-0.055 - _P_ENC)
    return out.clamp_(max=_T_ENC).mul_(12.92).add_(hi).clamp_(0.0, 1.0)


def _step(a: Tensor, b: Tensor) -> Tensor:
    """``relu(sign(a - b))`` of the reference as a float tensor (exact; see ``_BIG``)."""
    return torch.sub(a, b).mul_(_BIG).clamp_(0.0, 1.0)


def _hsv_edit_(y: Tensor, s_: dict[str, Tensor | None]) -> Tensor:
    """Bgr2Hsv -> whites, blacks, highlights, shadows, vibrance, saturation -> Hsv2Bgr on a chunk, in place."""
    r, g, b = y[:, 0:1], y[:, 1:2], y[:, 2:3]
    mx = torch.maximum(r, g)
    torch.maximum(mx, b, out=mx)
    mn = torch.minimum(r, g)
    torch.minimum(mn, b, out=mn)
    # the reference's hue flags: which channel its sextant formulas treat as the minimum (ties included)
    p1, p2, p3 = _step(b, g), _step(g, r), _step(r, b)
    f_b = torch.addcmul(p3, p1, p3, value=-1.0)  # (1 - pos(b - g)) pos(r - b)
    f_r = torch.addcmul(p2, p3, p2, value=-1.0)  # (1 - pos(r - b)) pos(g - r)
    f_g = p1.addcmul_(p2, p1, value=-1.0)  # (1 - pos(g - r)) pos(b - g)
    d = mn.neg_().add_(mx)  # mx - mn
    s = torch.add(mx, HSV_EPS)
    torch.div(d, s, out=s)
    d.add_(HSV_EPS)
    v = mx
    if s_["wb_gain"] is not None:  # whites then blacks: v (1 + kw)(1 - kb) + kb
        v = torch.mul(mx, s_["wb_gain"]).add_(s_["wb_off"])
    if s_["highlights"] is not None:  # v += 5a sigmoid(5(v - 1)) (1 - v)
        v = v if v is not mx else mx.clone()
        t = torch.mul(v, 5.0).sub_(5.0).sigmoid_()
        t.mul_(torch.rsub(v, 1.0))
        v.addcmul_(t, s_["highlights"])
    if s_["shadows"] is not None:  # v += 5a (1 - sigmoid(5v)) v
        v = v if v is not mx else mx.clone()
        t = torch.mul(v, -5.0).sigmoid_().mul_(v)
        v.addcmul_(t, s_["shadows"])
    if s_["vibrance"] is not None:  # s += a s (1 - sigmoid(10(s - 0.5)))
        t = torch.mul(s, -10.0).add_(5.0).sigmoid_().mul_(s)
        s.addcmul_(t, s_["vibrance"])
    if s_["saturation"] is not None:
        s.mul_(s_["saturation"]).clamp_(0.0, 1.0)
    cd = s.mul_(v).div_(d)  # c' / d
    e = torch.mul(cd, HSV_EPS)  # the flagged minimum gets v' - c' = v' - (c'/d)(mx - mn + eps)
    for ch, flag in ((r, f_r), (g, f_g), (b, f_b)):
        ch.sub_(mx).mul_(cd).add_(v).addcmul_(e, flag, value=-1.0)
    return y


def lightroom_fused(images: Tensor, p: Tensor, clarity_method: str = "auto") -> Tensor:
    """The 12 sliders of ``lightroom_basic`` (reference order) without autograd, chunked and fused.

    Args:
        images: ``N x 3 x H x W`` float in [0, 1] (checked by the caller).
        p: ``N x 12`` checked (clamped) parameters in the reference order.
        clarity_method: bilateral path of the clarity slider.

    Returns:
        Edited images in [0, 1], same shape and dtype (a new tensor).
    """
    n, _, h, w = images.shape
    if n > 1 and h * w <= GROUP_MAX_PIXELS:
        # thumbnails: the whole pipeline per group of images, so that every stage (the float64 guided-filter
        # buffers included) works in cache instead of streaming the whole batch through memory at each step
        out = torch.empty_like(images, memory_format=torch.contiguous_format)
        step = max(1, GROUP_PIXELS // (h * w))
        for i in range(0, n, step):
            j = min(n, i + step)
            out[i:j] = _lightroom_fused(images[i:j], p[i:j], clarity_method)
        return out
    return _lightroom_fused(images, p, clarity_method)


def _lightroom_fused(images: Tensor, p: Tensor, clarity_method: str) -> Tensor:
    from zoo.editing.kosugi import clarity, dehaze

    n, _, h, w = images.shape
    x = torch.empty_like(images, memory_format=torch.contiguous_format)
    for bi, ri in _chunks(n, h, w):
        srgb_to_prophoto_(images[bi, :, ri], x[bi, :, ri])
    # the filters need whole images (they skip images whose slider is 0)
    if bool((p[:, 0] != 0).any()):
        x = dehaze(x, p[:, 0])
    if bool((p[:, 1] != 0).any()):
        x = clarity(x, p[:, 1], method=clarity_method)
    x = x.contiguous()
    col = p.view(n, 12, 1, 1)
    # contrast: (x - m)(1 + a) + m = x (1 + a) - m a, clipped (the logit clamp below subsumes the clip at a = 0)
    ca = col[:, 2:3]
    con_gain = con_off = None
    if bool((p[:, 2] != 0).any()):
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        con_gain, con_off = 1.0 + ca, -m * ca
    # logit space: exposure, temp, tint are per-channel offsets o; sigmoid(logit(y) + o) = yK / (1 + y(K - 1))
    e, t, tn = col[:, 3:4, 0, 0], col[:, 4:5, 0, 0], col[:, 5:6, 0, 0]
    tp, tm, np_, nm = t.clamp(min=0), t.clamp(max=0), tn.clamp(min=0), tn.clamp(max=0)
    off = torch.cat([5 * e + 2 * tp + np_ - nm, 5 * e + 1.6 * tp - tm - 2 * nm, 5 * e - 2 * tm + 2 * np_], dim=1)
    kk = km1 = None
    if bool((off != 0).any()):
        kk = off.exp().view(n, 3, 1, 1)
        km1 = kk - 1.0

    # HSV sliders: per-image scalars, None when the slider is 0 for every image
    def active(i: int) -> bool:
        return bool((p[:, i] != 0).any())

    sq = lambda i: torch.sqrt((col[:, i : i + 1] + 1.0).clamp(min=1e-12)) - 1.0  # noqa: E731
    hs: dict[str, Tensor | None] = dict(wb_gain=None, wb_off=None, highlights=None, shadows=None, vibrance=None,
                                        saturation=None)  # fmt: skip
    if active(6) or active(7):
        kw, kb = 0.2 * sq(6), 0.2 * sq(7)
        hs["wb_gain"], hs["wb_off"] = (1.0 + kw) * (1.0 - kb), kb
    if active(8):
        hs["highlights"] = 5.0 * col[:, 8:9]
    if active(9):
        hs["shadows"] = 5.0 * col[:, 9:10]
    if active(10):
        hs["vibrance"] = col[:, 10:11]
    if active(11):
        hs["saturation"] = 1.0 + col[:, 11:12]
    out = torch.empty_like(x)
    for bi, ri in _chunks(n, h, w):
        y = x[bi, :, ri]
        if con_gain is not None:
            y.mul_(con_gain[bi]).add_(con_off[bi])
        y.clamp_(LOGIT_EPS, 1.0 - LOGIT_EPS)
        if kk is not None:
            den = torch.mul(y, km1[bi]).add_(1.0)
            y.mul_(kk[bi]).div_(den)
        _hsv_edit_(y, {k: (None if v is None else v[bi]) for k, v in hs.items()})
        prophoto_to_srgb_(y, out[bi, :, ri])
    return out


__all__ = ["lightroom_fused", "srgb_to_prophoto_", "prophoto_to_srgb_", "CHUNK_PIXELS"]
