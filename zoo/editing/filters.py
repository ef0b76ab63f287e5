"""Filters of the reference editor, each with the reference's exact window semantics, plus O(HW) fast paths.

Window conventions follow OpenCV/NumPy as the reference uses them: an even window of size ``k`` covers offsets
``[-(k // 2), k - 1 - k // 2]`` (asymmetric), box filters use BORDER_REFLECT_101, the dark-channel min filter pads
by edge replication. All filters take ``N x C x H x W`` tensors and are differentiable (min filters route the
gradient to the minimum; the bilateral filter's 8-bit rounding uses a straight-through gradient).

Cost per pixel does not grow with the window for the box, guided and min filters (cumulative sums; doubling
windows for the min filter). The bilateral filter has an exact path (direct sum over the disc of taps, used
for small radii, where the reference fixtures check it) and a bilateral-grid path (Chen, Paris & Durand 2007) for
large radii, whose cost is O(HW) plus a small grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# ------------------------------------------------------------------------------------------- index helpers


def reflect101_index(n: int, before: int, after: int, device: torch.device | None = None) -> Tensor:
    """Indices of a BORDER_REFLECT_101 padding (``dcb|abcd|cba``), for any pad width (repeats as OpenCV does)."""
    i = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * n - 2
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


def replicate_index(n: int, before: int, after: int, device: torch.device | None = None) -> Tensor:
    """Indices of an edge (replicate) padding."""
    return torch.arange(-before, n + after, device=device).clamp(0, n - 1)


def _pad_dim(x: Tensor, dim: int, before: int, after: int, mode: str) -> Tensor:
    if before == 0 and after == 0:
        return x
    n = x.shape[dim]
    if x.dim() == 4 and dim in (2, 3) and (mode == "replicate" or max(before, after) < n):
        # torch's "reflect" is BORDER_REFLECT_101; F.pad is much faster than a gather
        pad = (before, after, 0, 0) if dim == 3 else (0, 0, before, after)
        return F.pad(x, pad, mode="reflect" if mode == "reflect101" else "replicate")
    fn = reflect101_index if mode == "reflect101" else replicate_index
    return x.index_select(dim, fn(x.shape[dim], before, after, x.device))


# ------------------------------------------------------------------------------------------- box filter


def _box1d(x: Tensor, size: int, dim: int) -> Tensor:
    if size <= 1:
        return x
    lo = size // 2
    n = x.shape[dim]
    # one extra leading sample, zeroed, so that every window sum is a difference of two cumulative sums
    xp = _pad_dim(x, dim, lo + 1, size - 1 - lo, "reflect101")
    if xp is x:
        xp = x.clone()
    xp.narrow(dim, 0, 1).zero_()
    c = torch.cumsum(xp, dim=dim)
    return torch.sub(c.narrow(dim, size, n), c.narrow(dim, 0, n)).mul_(1.0 / size)


def _box_last(x: Tensor, size: int) -> Tensor:
    """Box mean along the contiguous last dim (reflect-101), from an in-place cumulative sum."""
    if size <= 1:
        return x
    lo = size // 2
    n = x.shape[-1]
    xp = _pad_dim(x, 3, lo + 1, size - 1 - lo, "reflect101")
    xp.narrow(3, 0, 1).zero_()
    c = xp.cumsum_(3)
    return torch.sub(c.narrow(3, size, n), c.narrow(3, 0, n)).mul_(1.0 / size)


def box_filter(x: Tensor, size: int) -> Tensor:
    """Normalised box filter (``cv2.boxFilter`` with BORDER_REFLECT_101), O(HW) for any window.

    Computed with cumulative sums in float64 (values on a 0..255 scale would lose digits in float32 sums),
    returned in the input's dtype.

    Args:
        x: ``N x C x H x W``.
        size: window side ``k`` (offsets ``[-(k//2), k-1-k//2]``).

    Returns:
        The windowed mean, same shape and dtype.
    """
    dtype = x.dtype
    y = _box1d(_box1d(x.double(), size, 2), size, 3)
    return y.to(dtype)


def box_filter_direct(x: Tensor, size: int) -> Tensor:
    """Direct windowed mean with the same semantics as :func:`box_filter` (for tests; O(HW k^2))."""
    lo = size // 2
    xp = _pad_dim(_pad_dim(x, 2, lo, size - 1 - lo, "reflect101"), 3, lo, size - 1 - lo, "reflect101")
    return F.avg_pool2d(xp, size, stride=1)


# ------------------------------------------------------------------------------------------- guided filter


GUIDED_SUBSAMPLE_FROM = 64  # box sides >= this use the fast (subsampled) guided filter


def guided_filter(src: Tensor, guide: Tensor, size: int, eps: float, subsample: int | None = None) -> Tensor:
    """He et al.'s guided filter with box windows of side ``size`` (the dehaze submodule's version).

    ``a = cov(g, t) / (var(g) + eps)``, ``b = mean(t) - a mean(g)``, output ``box(a) g + box(b)``; every box
    is a float64 cumulative-sum box (``E[g^2] - E[g]^2`` cancels badly in float32 on a 0..255 scale).
    For large windows the coefficients are computed on a ``subsample``-times smaller image and upsampled
    bilinearly (He & Sun's fast guided filter, 2015): the output is still ``a g + b`` at full resolution.

    Args:
        src: ``N x 1 x H x W`` image to filter.
        guide: ``N x 1 x H x W`` guide.
        size: box window side.
        eps: regulariser.
        subsample: factor for the fast path; ``None``: ``size // 16`` when ``size >= 64`` (e.g. 5 at a 512 px
            image, 39 at 4000 px), else 1 (exact, as the reference).

    Returns:
        Filtered ``src`` in ``src``'s dtype.
    """
    dtype = src.dtype
    if subsample is None:
        subsample = guided_subsample(size)
    needs_grad = torch.is_grad_enabled() and (src.requires_grad or guide.requires_grad)
    if subsample > 1 and not needs_grad:
        # pool first (float32 is exact enough for a mean), float64 only for the small box statistics; the
        # bilinear upsampling and a g + b run in the input's dtype
        tl = F.avg_pool2d(src, subsample, ceil_mode=True).double()
        gl = F.avg_pool2d(guide.to(src.dtype), subsample, ceil_mode=True).double()
        ab = guided_coefficients(tl, gl, max(int(round(size / subsample)), 1), eps).to(dtype)
        ab = F.interpolate(ab, size=guide.shape[-2:], mode="bilinear", align_corners=False)
        return torch.addcmul(ab[:, 1:], ab[:, :1], guide.to(dtype))
    t, g = src.double(), guide.double()
    tl, gl, size_l = t, g, size
    if subsample > 1:
        tl = F.avg_pool2d(t, subsample, ceil_mode=True)
        gl = F.avg_pool2d(g, subsample, ceil_mode=True)
        size_l = max(int(round(size / subsample)), 1)
    if needs_grad:
        stats = box_filter(torch.cat([gl, tl, gl * gl, gl * tl], dim=1), size_l)
        mg, mt, cgg, cgt = stats.unbind(1)
        a = (cgt - mt * mg) / (cgg - mg * mg + eps)
        b = mt - a * mg
        ab = box_filter(torch.stack([a, b], dim=1), size_l)
    else:
        ab = guided_coefficients(tl, gl, size_l, eps)
    if subsample > 1:
        ab = F.interpolate(ab, size=g.shape[-2:], mode="bilinear", align_corners=False)
    return (ab[:, :1] * g + ab[:, 1:]).to(dtype)


def guided_subsample(size: int) -> int:
    """The fast guided filter's factor: ``size // 16`` for ``size >= GUIDED_SUBSAMPLE_FROM``, else 1 (exact)."""
    return size // 16 if size >= GUIDED_SUBSAMPLE_FROM else 1


def guided_coefficients(tl: Tensor, gl: Tensor, size: int, eps: float) -> Tensor:
    """Box-filtered guided-filter coefficients ``(box(a), box(b))`` as ``N x 2 x h x w``, without autograd.

    Preallocated buffers, in-place ops and contiguous last-dim cumulative sums (two transposes); pass float64
    inputs (``E[g^2] - E[g]^2`` cancels).
    """
    n, _, hl, wl = gl.shape
    buf = torch.empty((n, 4, hl, wl), dtype=gl.dtype, device=gl.device)
    buf[:, 0:1] = gl
    buf[:, 1:2] = tl
    torch.mul(gl, gl, out=buf[:, 2:3])
    torch.mul(gl, tl, out=buf[:, 3:4])
    if max(size // 2 + 1, size - 1 - size // 2) < min(hl, wl):  # both pads inside the image: integral image
        stats = _box2d_integral(buf, size)
        mg, mt, cgg, cgt = stats[:, 0:1], stats[:, 1:2], stats[:, 2:3], stats[:, 3:4]
        a = cgg.addcmul_(mg, mg, value=-1.0).add_(eps)  # var + eps
        a = torch.div(cgt.addcmul_(mt, mg, value=-1.0), a, out=stats[:, 2:3])  # cov / (var + eps)
        torch.addcmul(mt, a, mg, value=-1.0, out=stats[:, 3:4])  # b = mean_t - a mean_g
        return _box2d_integral(stats[:, 2:4], size)
    # box along W, transpose, box along H: the statistics come out transposed (N x 4 x W x H)
    stats = _box_last(_box_last(buf, size).mT.contiguous(), size)
    mg, mt, cgg, cgt = stats[:, 0:1], stats[:, 1:2], stats[:, 2:3], stats[:, 3:4]
    a = cgg.addcmul_(mg, mg, value=-1.0).add_(eps)  # var + eps
    a = torch.div(cgt.addcmul_(mt, mg, value=-1.0), a, out=stats[:, 2:3])  # cov / (var + eps)
    torch.addcmul(mt, a, mg, value=-1.0, out=stats[:, 3:4])  # b = mean_t - a mean_g
    return _box_last(_box_last(stats[:, 2:4].contiguous(), size).mT.contiguous(), size)


def _box2d_integral(x: Tensor, size: int) -> Tensor:
    """Box mean (reflect-101) of ``N x C x H x W`` from one padded integral image (float64 inputs), no autograd.

    One two-sided reflect pad (with a zeroed leading row and column), two in-place cumulative sums and the
    four-corner difference: fewer passes than two separable boxes with a transpose. Pads must be < H, W.
    """
    h, w = x.shape[-2:]
    lo = size // 2
    hi = size - 1 - lo
    s = F.pad(x, (lo + 1, hi, lo + 1, hi), mode="reflect")
    s[:, :, 0].zero_()
    s[:, :, :, 0].zero_()
    s.cumsum_(3).cumsum_(2)
    out = torch.sub(s[:, :, size : size + h, size : size + w], s[:, :, :h, size : size + w])
    out.sub_(s[:, :, size : size + h, :w]).add_(s[:, :, :h, :w])
    return out.mul_(1.0 / (size * size))


def bilinear_rows(n_in: int, n_out: int) -> tuple[Tensor, Tensor, Tensor]:
    """``F.interpolate(mode="bilinear", align_corners=False)`` along one axis: ``(i0, i1, frac)`` per output."""
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    return i0, i1, (src - i0).float()


# ------------------------------------------------------------------------------------------- min filter


def _min1d(x: Tensor, size: int, dim: int) -> Tensor:
    """Running minimum along ``dim`` with edge padding, by doubling: ``log2(size) + 1`` vectorised minimum passes.

    ``m_2w(i) = min(m_w(i), m_w(i + w))``; the window ``[i, i + size)`` is then the union of the two windows of
    the largest ``w <= size`` at ``i`` and ``i + size - w`` (exact: min is idempotent). Memory O(HW).
    """
    if size <= 1:
        return x
    n = x.shape[dim]
    lo = size // 2
    m = _pad_dim(x, dim, lo, size - 1 - lo, "replicate")
    w = 1
    while 2 * w <= size:
        length = m.shape[dim] - w
        m = torch.minimum(m.narrow(dim, 0, length), m.narrow(dim, w, length))
        w *= 2
    return torch.minimum(m.narrow(dim, 0, n), m.narrow(dim, size - w, n))


MIN_SCAN_FROM = 32  # windows >= this use the chunked / van Herk-Gil-Werman path without autograd
_MIN_CHUNK = 1 << 15  # elements per row chunk of the W pass (in cache)


def _min_rows_nograd(x: Tensor, size: int) -> Tensor:
    """Running minimum along W (edge padding) over cache-sized row chunks, doubling in two ping-pong buffers."""
    n, c, h, w = x.shape
    lo = size // 2
    rows = max(1, _MIN_CHUNK // (w + size))
    out = torch.empty_like(x)
    xr = x.reshape(n * c * h, w)
    orow = out.view(n * c * h, w)
    total = xr.shape[0]
    rows = min(rows, total)
    bufa = torch.empty((rows, w + size - 1), dtype=x.dtype, device=x.device)
    bufb = torch.empty_like(bufa)
    for r0 in range(0, total, rows):
        r1 = min(total, r0 + rows)
        a, b = bufa[: r1 - r0], bufb[: r1 - r0]
        src = xr[r0:r1]
        a[:, lo : lo + w].copy_(src)
        a[:, :lo].copy_(src[:, :1].expand(-1, lo))
        a[:, lo + w :].copy_(src[:, w - 1 :].expand(-1, size - 1 - lo))
        length, k = w + size - 1, 1
        while 2 * k <= size:
            length -= k
            torch.minimum(a[:, :length], a[:, k : k + length], out=b[:, :length])
            a, b = b, a
            k *= 2
        torch.minimum(a[:, :w], a[:, size - k : size - k + w], out=orow[r0:r1])
    return out


def _min_cols_nograd(x: Tensor, size: int) -> Tensor:
    """Running minimum along H (edge padding) by van Herk / Gil-Werman: block prefix and suffix minima, O(1)
    per pixel for any window, each step one contiguous row of all images and channels."""
    n, c, h, w = x.shape
    lo = size // 2
    length = h + size - 1
    nb = -(-length // size)
    # rows first: N*C x L x W, padded by edge replication, the tail of the last block with +inf
    g = torch.empty((n * c, nb * size, w), dtype=x.dtype, device=x.device)
    xr = x.reshape(n * c, h, w)
    g[:, lo : lo + h] = xr
    g[:, :lo] = xr[:, :1]
    g[:, lo + h : length] = xr[:, h - 1 :]
    g[:, length:] = float("inf")
    hs = g.clone()
    for i in range(1, nb * size):
        if i % size:
            torch.minimum(g[:, i - 1], g[:, i], out=g[:, i])
    for i in range(nb * size - 2, -1, -1):
        if (i + 1) % size:
            torch.minimum(hs[:, i + 1], hs[:, i], out=hs[:, i])
    out = torch.minimum(hs[:, :h], g[:, size - 1 : size - 1 + h])
    return out.view(n, c, h, w)


def min_filter(x: Tensor, size: int) -> Tensor:
    """Square min filter (erosion) with edge padding and the reference's (asymmetric for even) window.

    O(HW log window) time and O(HW) memory (separable, doubling windows), unlike the reference, which stacks
    ``size^2`` shifted copies. Without autograd, windows >= :data:`MIN_SCAN_FROM` use cache-sized row chunks
    along W and van Herk / Gil-Werman block minima along H (same values, exactly).

    Args:
        x: ``N x C x H x W``.
        size: window side.
    """
    if size >= MIN_SCAN_FROM and not (torch.is_grad_enabled() and x.requires_grad):
        return _min_cols_nograd(_min_rows_nograd(x.contiguous(), size), size)
    return _min1d(_min1d(x, size, 2), size, 3)


def min_filter_direct(x: Tensor, size: int) -> Tensor:
    """Direct min filter with the same semantics as :func:`min_filter` (for tests)."""
    lo = size // 2
    xp = _pad_dim(_pad_dim(x, 2, lo, size - 1 - lo, "replicate"), 3, lo, size - 1 - lo, "replicate")
    return -F.max_pool2d(-xp, size, stride=1)


# ------------------------------------------------------------------------------------------- bilateral


def bilateral_radius(d: int, sigma_space: float) -> int:
    """OpenCV's radius rule: ``d // 2`` for ``d > 0``, else ``round(1.5 sigma_space)``; at least 1."""
    radius = d // 2 if d > 0 else int(round(1.5 * sigma_space))
    return max(radius, 1)


def _ste_round(x: Tensor) -> Tensor:
    """Round half to even (like ``cvRound``) with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()


def bilateral_exact(img: Tensor, radius: int, sigma_color: float, sigma_space: float) -> Tensor:
    """OpenCV's 8-bit 3-channel ``bilateralFilter``, reproduced tap by tap.

    Taps are the offsets with ``sqrt(i^2 + j^2) <= radius``; space weight ``exp(-r^2 / (2 ss^2))``; colour weight
    ``exp(-D^2 / (2 sc^2))`` with ``D`` the L1 distance summed over the 3 channels; BORDER_REFLECT_101;
    float32 accumulation in OpenCV's tap order; the result is rounded to integers.

    Args:
        img: ``N x 3 x H x W`` with integer values on a 0..255 scale (float dtype).
        radius: tap radius (see :func:`bilateral_radius`).
        sigma_color: colour sigma (0..255 units, L1 over channels).
        sigma_space: spatial sigma in pixels.

    Returns:
        The filtered image, same shape, integer values (straight-through gradient through the rounding).
    """
    sigma_color = sigma_color if sigma_color > 0 else 1.0
    sigma_space = sigma_space if sigma_space > 0 else 1.0
    cc = -0.5 / (sigma_color * sigma_color)
    sc = -0.5 / (sigma_space * sigma_space)
    n, c, h, w = img.shape
    if not (torch.is_grad_enabled() and img.requires_grad) and _cv2_bilateral_ok(img):
        return _bilateral_exact_cv2(img, radius, sigma_color, sigma_space)
    xp = _pad_dim(_pad_dim(img, 2, radius, radius, "reflect101"), 3, radius, radius, "reflect101")
    if not (torch.is_grad_enabled() and img.requires_grad):
        return _bilateral_exact_nograd(img, xp, radius, cc, sc)
    num = torch.zeros_like(img)
    den = torch.zeros((n, 1, h, w), dtype=img.dtype, device=img.device)
    for i in range(-radius, radius + 1):
        for j in range(-radius, radius + 1):
            r = math.sqrt(i * i + j * j)
            if r > radius:
                continue
            sw = float(torch.tensor(math.exp(r * r * sc), dtype=torch.float32))
            sh = xp[:, :, radius + i : radius + i + h, radius + j : radius + j + w]
            dist = (sh - img).abs().sum(dim=1, keepdim=True)
            wgt = torch.exp(dist * dist * cc) * sw
            num = num + wgt * sh
            den = den + wgt
    return _ste_round(num * (1.0 / den))


BILATERAL_CHUNK_PIXELS = 1 << 14


def _cv2_bilateral_ok(img: Tensor) -> bool:
    """The OpenCV path needs CPU float32 RGB with integer values in 0..255 (the 8-bit clarity input)."""
    return _cv2_remap_ok(img) and img.numel() > 0


def _bilateral_exact_cv2(img: Tensor, radius: int, sigma_color: float, sigma_space: float) -> Tensor:
    """:func:`bilateral_exact` without autograd by OpenCV's own 8-bit ``bilateralFilter`` (the reference's call).

    The input holds integers 0..255 (clarity's 8-bit truncation), so the uint8 image is exactly the
    reference's; OpenCV's SIMD kernel is several times faster than the tap loop. Channel order does not matter
    (the colour distance is an L1 sum over channels). ``tests/test_editing_software.py`` checks it against the
    torch tap loop (:func:`_bilateral_exact_nograd`).
    """
    import cv2

    n = img.shape[0]
    u8 = img.clamp(0.0, 255.0).permute(0, 2, 3, 1).to(torch.uint8).contiguous().numpy()  # N x H x W x 3
    res = torch.empty((n,) + u8.shape[1:], dtype=torch.uint8)
    dst = res.numpy()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(torch.get_num_threads())
    try:
        for b in range(n):
            cv2.bilateralFilter(u8[b], 2 * radius + 1, sigma_color, sigma_space, dst=dst[b],
                                borderType=cv2.BORDER_REFLECT_101)  # fmt: skip
    finally:
        cv2.setNumThreads(threads)
    return res.permute(0, 3, 1, 2).to(img.dtype).contiguous()


def _bilateral_exact_nograd(img: Tensor, xp: Tensor, radius: int, cc: float, sc: float) -> Tensor:
    """:func:`bilateral_exact` without autograd: in-place accumulation over cache-sized chunks (images, rows)."""
    n, c, h, w = img.shape
    taps = []
    for i in range(-radius, radius + 1):
        for j in range(-radius, radius + 1):
            r = math.sqrt(i * i + j * j)
            if r <= radius and (i, j) != (0, 0):
                sw = float(torch.tensor(math.exp(r * r * sc), dtype=torch.float32))
                if sw > 0:  # a weight that underflows in float32 adds exactly nothing
                    taps.append((i, j, math.log2(sw)))
    k2 = cc / math.log(2.0)  # exp(D^2 cc) sw = exp2(D^2 cc / ln 2 + log2 sw)
    out = torch.empty_like(img)
    if h * w <= BILATERAL_CHUNK_PIXELS:
        step = max(1, BILATERAL_CHUNK_PIXELS // (h * w))
        chunks = [(slice(b, min(n, b + step)), 0, h) for b in range(0, n, step)]
    else:
        rows = max(1, BILATERAL_CHUNK_PIXELS // w)
        chunks = [(slice(b, b + 1), r0, min(h, r0 + rows)) for b in range(n) for r0 in range(0, h, rows)]
    for bi, r0, r1 in chunks:
        ctr = img[bi, :, r0:r1]
        hh = r1 - r0
        num = ctr.clone()  # the centre tap has weight 1
        den = torch.ones_like(ctr[:, :1])
        diff = torch.empty_like(ctr)
        wgt = torch.empty_like(den)
        for i, j, lsw in taps:
            sh = xp[bi, :, radius + r0 + i : radius + r0 + i + hh, radius + j : radius + j + w]
            torch.sub(sh, ctr, out=diff).abs_()
            torch.add(diff[:, 0:1], diff[:, 1:2], out=wgt).add_(diff[:, 2:3])
            wgt.square_().mul_(k2).add_(lsw).exp2_()
            num.addcmul_(wgt, sh)
            den.add_(wgt)
        torch.div(num, den, out=out[bi, :, r0:r1]).round_()
    return out


def bilateral_grid(img: Tensor, radius: int, sigma_color: float, sigma_space: float) -> Tensor:
    """Fast approximation of :func:`bilateral_exact` with a bilateral grid (Chen, Paris & Durand, 2007).

    The range axis is the channel sum (the L1 colour distance equals the distance of channel sums whenever the
    channels move together, as they do in natural images); the grid is sampled at ``sigma_space / 1.5`` pixels and
    ``sigma_color / 1.5`` range units, blurred with the reference's disc-truncated Gaussian in space and a Gaussian
    in range, and sliced trilinearly. Cost: O(HW) plus the grid (about ``HW / (sigma_space/1.5)^2 * 24`` cells).

    Args, Returns: as :func:`bilateral_exact` (output not rounded).
    """
    if not (torch.is_grad_enabled() and img.requires_grad) and _cv2_remap_ok(img):
        return _bilateral_grid_nograd(img, radius, sigma_color, sigma_space)
    n, c, h, w = img.shape
    dev, dt = img.device, img.dtype
    s_s = max(sigma_space / 1.5, 1.0)
    s_r = max(sigma_color / 1.5, 1.0)
    guide = img.sum(dim=1)  # N x H x W, 0 .. 765
    gh = int(round((h - 1) / s_s)) + 1
    gw = int(round((w - 1) / s_s)) + 1
    gd = int(math.ceil(float(guide.detach().max()) / s_r)) + 1 if guide.numel() else 1
    ys = torch.arange(h, device=dev, dtype=dt) / s_s
    xs = torch.arange(w, device=dev, dtype=dt) / s_s
    zs = guide / s_r
    iy = torch.round(ys).long().view(1, h, 1)
    ix = torch.round(xs).long().view(1, 1, w)
    iz = torch.round(zs.detach()).long().clamp(0, gd - 1)
    nn_ = torch.arange(n, device=dev).view(n, 1, 1)
    cell = ((nn_ * gd + iz) * gh + iy) * gw + ix  # N x H x W
    data = torch.cat([img, torch.ones((n, 1, h, w), device=dev, dtype=dt)], dim=1)  # N x 4 x H x W
    vals = data.transpose(0, 1).reshape(c + 1, -1)
    grid = torch.zeros((c + 1, n * gd * gh * gw), device=dev, dtype=dt)
    grid = grid.index_add(1, cell.reshape(-1), vals)
    grid = grid.view(c + 1, n, gd, gh, gw).transpose(0, 1).reshape(n * (c + 1), 1, gd, gh, gw)
    # range blur: Gaussian of sigma_color in grid units (2 cells), truncated at 3 sigma
    sr_cells = sigma_color / s_r
    kr = int(math.ceil(3 * sr_cells))
    zk = torch.arange(-kr, kr + 1, device=dev, dtype=dt)
    krange = torch.exp(-0.5 * (zk / sr_cells) ** 2)
    grid = F.conv3d(grid, krange.view(1, 1, -1, 1, 1), padding=(kr, 0, 0))
    # space blur: the reference's Gaussian, truncated to its disc of taps
    ks = int(math.floor(radius / s_s))
    off = torch.arange(-ks, ks + 1, device=dev, dtype=dt) * s_s
    rr = off.view(-1, 1) ** 2 + off.view(1, -1) ** 2
    kspace = torch.exp(-0.5 * rr / (sigma_space * sigma_space)) * (rr <= radius * radius + 1e-9)
    grid = _disc_blur(grid.view(n * (c + 1) * gd, gh, gw), kspace, ks).view(n, c + 1, gd, gh, gw)
    # slice at each pixel's exact (x, y, z), align_corners=True coordinates
    gx = (xs * (2.0 / max(gw - 1, 1)) - 1.0).view(1, 1, w).expand(n, h, w)
    gy = (ys * (2.0 / max(gh - 1, 1)) - 1.0).view(1, h, 1).expand(n, h, w)
    gz = zs * (2.0 / max(gd - 1, 1)) - 1.0
    coords = torch.stack([gx, gy, gz], dim=-1).unsqueeze(1)  # N x 1 x H x W x 3
    out = F.grid_sample(grid, coords, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
    return out[:, :c] / out[:, c:].clamp(min=1e-12)


def _cv2_remap_ok(img: Tensor) -> bool:
    if img.device.type != "cpu" or img.dtype != torch.float32 or img.shape[1] != 3:
        return False
    try:
        import cv2  # noqa: F401  (opencv-python-headless, installed with albumentations)
    except ImportError:  # pragma: no cover
        return False
    return True


GRID_CHUNK_PIXELS = 1 << 16


def _bilateral_grid_nograd(img: Tensor, radius: int, sigma_color: float, sigma_space: float) -> Tensor:
    """:func:`bilateral_grid` without autograd on the CPU: same grid, cheaper splat, blur and slice.

    The splat runs over row chunks (int32 cell indices, no full-size temporaries); the range blur is a banded
    matrix product and the space blur a 2-D convolution (the same zero-padded sums as the autograd path); the
    slice interpolates each row's grid (4 x depth x width, after the exact linear interpolation in y) in x and
    range with OpenCV's ``remap`` (bilinear, coordinates quantised to 1/32 of a grid cell: at most 1/64 of a
    cell's variation, far below the approximation of the grid itself), instead of a per-pixel 3-D
    ``grid_sample``.
    """
    import cv2

    n, c, h, w = img.shape
    dt = img.dtype
    s_s = max(sigma_space / 1.5, 1.0)
    s_r = max(sigma_color / 1.5, 1.0)
    gh = int(round((h - 1) / s_s)) + 1
    gw = int(round((w - 1) / s_s)) + 1
    vmax = max(float(img.amax()), 0.0) if img.numel() else 0.0
    gd = int(math.ceil(3.0 * vmax / s_r)) + 1
    ys = torch.arange(h, dtype=dt) / s_s
    xs = torch.arange(w, dtype=dt) / s_s
    iy = torch.round(ys).to(torch.int32)
    ix = torch.round(xs).to(torch.int32)
    rows = max(1, min(h, GRID_CHUNK_PIXELS // max(w, 1)))
    cells = gd * gh * gw
    grid = torch.zeros((n, c + 1, cells), dtype=dt)
    ones = torch.ones(rows * w, dtype=dt)
    cell = torch.empty((rows, w), dtype=torch.int32)
    zbuf = torch.empty((rows, w), dtype=dt)
    for b in range(n):
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            chunk = img[b, :, r0:r1]
            z = torch.sum(chunk, dim=0, out=zbuf[: r1 - r0]).mul_(1.0 / s_r).round_().clamp_(0, gd - 1)
            ci = cell[: r1 - r0]
            ci.copy_(z).mul_(gh * gw).add_(iy[r0:r1].view(-1, 1) * gw).add_(ix.view(1, -1))
            idx = ci.view(-1)
            for ch in range(c):  # 1-D index_add per plane (the 2-D one along dim 1 is 10x slower)
                grid[b, ch].index_add_(0, idx, chunk[ch].reshape(-1))
            grid[b, c].index_add_(0, idx, ones[: idx.numel()])
    grid = grid.view(n * (c + 1), gd, gh * gw)
    # range blur: Gaussian of sigma_color in grid units, truncated at 3 sigma, zero padding (banded matrix)
    sr_cells = sigma_color / s_r
    kr = int(math.ceil(3 * sr_cells))
    zk = torch.arange(-kr, kr + 1, dtype=dt)
    krange = torch.exp(-0.5 * (zk / sr_cells) ** 2)
    dz = torch.arange(gd).view(1, -1) - torch.arange(gd).view(-1, 1)  # z' - z
    band = torch.where(dz.abs() <= kr, krange[(dz + kr).clamp(0, 2 * kr)], torch.zeros((), dtype=dt))
    grid = torch.matmul(band, grid)
    # space blur: the reference's Gaussian truncated to its disc of taps, zero padding
    ks = int(math.floor(radius / s_s))
    off = torch.arange(-ks, ks + 1, dtype=dt) * s_s
    rr = off.view(-1, 1) ** 2 + off.view(1, -1) ** 2
    kspace = torch.exp(-0.5 * rr / (sigma_space * sigma_space)) * (rr <= radius * radius + 1e-9)
    padded = F.pad(grid.view(-1, gh, gw), (ks, ks, ks, ks))
    grid = torch.zeros((n * (c + 1) * gd, gh, gw), dtype=dt)
    for i in range(2 * ks + 1):
        for j in range(2 * ks + 1):
            if float(kspace[i, j]) > 0:
                grid.add_(padded[:, i : i + gh, j : j + gw], alpha=float(kspace[i, j]))
    # N x (gd gh) x gw x 4: the (y, x) plane of each range level stacked by level, the 4 values interleaved
    grid = grid.view(n, c + 1, gd * gh, gw).permute(0, 2, 3, 1).contiguous()
    # slice: remap bilinear in (x, y) at the two range levels around each pixel, linear in range in between
    mapx = xs.clamp(max=gw - 1).view(1, -1).expand(rows, w).contiguous().numpy()
    rowy = ys.clamp(max=gh - 1)
    fz = torch.empty((rows, w), dtype=dt)
    my0 = torch.empty((rows, w), dtype=dt)
    my1 = torch.empty((rows, w), dtype=dt)
    out = torch.empty_like(img)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(torch.get_num_threads())
    try:
        for b in range(n):
            src = grid[b].numpy()
            for r0 in range(0, h, rows):
                r1 = min(h, r0 + rows)
                hh = r1 - r0
                z = torch.sum(img[b, :, r0:r1], dim=0, out=zbuf[:hh]).mul_(1.0 / s_r).clamp_(0, gd - 1)
                z0 = torch.floor(z, out=my0[:hh]).clamp_(max=max(gd - 2, 0))
                f = torch.sub(z, z0, out=fz[:hh]).unsqueeze(-1)
                m0 = z0.mul_(gh).add_(rowy[r0:r1].view(-1, 1))
                m1 = torch.add(m0, gh if gd > 1 else 0, out=my1[:hh])
                mx = mapx[:hh]
                s0 = cv2.remap(src, mx, m0.numpy(), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                s1 = cv2.remap(src, mx, m1.numpy(), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                res = torch.from_numpy(s0).lerp_(torch.from_numpy(s1), f)  # hh x w x 4
                torch.div(res[..., :c].permute(2, 0, 1), res[..., c].clamp_(min=1e-12), out=out[b, :, r0:r1])
    finally:
        cv2.setNumThreads(threads)
    return out


def _disc_blur(grid: Tensor, kernel: Tensor, k: int) -> Tensor:
    """Blur the last two dims with a (2k+1)^2 kernel by shifted adds over its non-zero taps (zero borders)."""
    if k == 0:
        return grid * kernel[0, 0]
    padded = F.pad(grid, (k, k, k, k))
    h, w = grid.shape[-2:]
    out = torch.zeros_like(grid)
    for i in range(2 * k + 1):
        for j in range(2 * k + 1):
            wgt = float(kernel[i, j])
            if wgt > 0:
                out = out + wgt * padded[..., i : i + h, j : j + w]
    return out


BILATERAL_EXACT_MAX_RADIUS = 8  # the reference's radius at long side < 288 px; 197 taps


def bilateral(img: Tensor, d: int, sigma_color: float, sigma_space: float, method: str = "auto") -> Tensor:
    """OpenCV-semantics bilateral filter of an 8-bit-valued RGB image (0..255 scale).

    Args:
        img: ``N x 3 x H x W`` integer-valued, 0..255.
        d: OpenCV's diameter parameter.
        sigma_color, sigma_space: OpenCV's sigmas.
        method: ``"exact"`` (tap by tap, as OpenCV), ``"grid"`` (bilateral grid, O(HW)) or ``"auto"``
            (exact up to radius :data:`BILATERAL_EXACT_MAX_RADIUS`, grid above).
    """
    radius = bilateral_radius(d, sigma_space)
    if method == "auto":
        method = "exact" if radius <= BILATERAL_EXACT_MAX_RADIUS else "grid"
    if method == "exact":
        return bilateral_exact(img, radius, sigma_color, sigma_space)
    if method == "grid":
        return bilateral_grid(img, radius, sigma_color, sigma_space)
    raise ValueError(f"bilateral: method must be 'auto', 'exact' or 'grid', got {method!r}")
