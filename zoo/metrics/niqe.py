"""NIQE (Mittal, Soundararajan & Bovik, IEEE SPL 2013) exactly as the MATLAB release computes it.

The MATLAB release (``computequality.m``, ``estimatemodelparam.m``) does, per image:

1. 8-bit RGB -> gray with ``rgb2gray`` (or BT.601 Y with ``rgb2ycbcr``), rounded half away from zero to
   ``uint8`` as MATLAB's integer conversion does;
2. crop to a whole number of 96 x 96 blocks (no overlap);
3. at each of 2 scales: local mean and deviation with a 7 x 7 Gaussian (``imfilter(..., 'replicate')``), the
   MSCN map ``(I - mu) / (sigma + 1)``, and per block 18 features (an AGGD fit of the map and of its products
   with 4 neighbours, found by a table search over ``gamma = 0.2:0.001:10``); then ``imresize(I, 0.5)``
   (bicubic with its antialiasing kernel, symmetric padding);
4. a multivariate Gaussian fitted to the 36-feature blocks (``nanmean``, ``nancov``) compared with the pristine
   model: ``sqrt((mu_p - mu_d) pinv((C_p + C_d) / 2) (mu_p - mu_d)^T)``.

Everything here is vectorised over blocks with NumPy in float64 (every block of a scale at once), so a
1-megapixel photo takes a fraction of a second. The pristine model is a ``.npz`` with ``mu_pris_param``
(1 x 36), ``cov_pris_param`` (36 x 36) and ``gaussian_window`` (7 x 7): the standard one ships with BasicSR
(``niqe_pris_params.npz``) and is packaged here as the default (``data/``, see its PROVENANCE.md);
:func:`fit_pristine` (and ``zoo niqe-fit``) fits one from your own photos.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from zoo.errors import DataError, InputError, load_failure
from zoo.registry import register

ENV_VAR = "ZOO_NIQE_PARAMS"
# The standard pristine model (BasicSR's niqe_pris_params.npz, the MATLAB release's numbers; see data/PROVENANCE.md).
DEFAULT_PARAMS = Path(__file__).resolve().parent / "data" / "niqe_pris_params.npz"
FEATURES_PER_SCALE = 18
SCALES = 2
# A fit needs clearly more blocks than features, or its 36 x 36 covariance is singular (NIQE then explodes).
MIN_FIT_BLOCKS = 2 * FEATURES_PER_SCALE * SCALES

# MATLAB rgb2gray: the first row of inv([1 0.956 0.621; 1 -0.272 -0.647; 1 -1.106 1.703]) (NTSC YIQ).
_GRAY_COEFFS = np.linalg.inv(np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]]))[0]
# MATLAB rgb2ycbcr (BT.601, studio swing): Y = 16 + (65.481 R + 128.553 G + 24.966 B) with R, G, B in [0, 1].
_Y_COEFFS = np.array([65.481, 128.553, 24.966]) / 255.0

# The AGGD shape table of estimateaggdparam.m: gam = 0.2:0.001:10 and r(gam) = G(2/g)^2 / (G(1/g) G(3/g)).
_GAM = 0.2 + 0.001 * np.arange(9801)


def _r_gam() -> np.ndarray:
    from scipy.special import gamma

    return gamma(2.0 / _GAM) ** 2 / (gamma(1.0 / _GAM) * gamma(3.0 / _GAM))


_R_GAM = _r_gam()
# r(gam) increases strictly on the table, which lets a binary search replace MATLAB's full argmin exactly.
assert np.all(np.diff(_R_GAM) > 0)


# ----------------------------------------------------------------------------------------------- MATLAB helpers


def matlab_round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero, as MATLAB's ``round`` and its integer conversions do (NumPy rounds to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def rgb_to_gray_matlab(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of an 8-bit ``H x W x 3`` image given as numbers in [0, 255]; returns float64 integers."""
    return np.clip(matlab_round(np.asarray(rgb, dtype=np.float64) @ _GRAY_COEFFS), 0, 255)


def rgb_to_y_matlab(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma (BT.601, 16..235) of an 8-bit ``H x W x 3`` image in ``[0, 255]``, rounded."""
    return np.clip(matlab_round(np.asarray(rgb, dtype=np.float64) @ _Y_COEFFS + 16.0), 0, 255)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _resize_matrix(in_len: int, out_len: int, scale: float):  # -> scipy.sparse.csr_matrix
    """The ``out_len x in_len`` matrix of MATLAB ``imresize``'s ``contributions`` (bicubic, antialiased, symmetric)."""
    width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel by 1 / scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)

        width = width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])  # symmetric padding, 0-based
    cols = aux[np.mod(idx.astype(np.int64) - 1, aux.size)]
    from scipy import sparse

    # duplicates (mirrored taps at the borders) are summed, as MATLAB's weighted gather adds them
    rows = np.repeat(np.arange(out_len), taps)
    return sparse.csr_matrix((weights.ravel(), (rows, cols.ravel())), shape=(out_len, in_len))


def imresize_matlab(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` (bicubic, antialiasing on downscaling) of a 2-D float64 array."""
    h, w = img.shape
    oh, ow = int(np.ceil(h * scale)), int(np.ceil(w * scale))
    # MATLAB resizes rows first when both scales are equal; as matrix products the order only moves the last bits.
    rows_done = _resize_matrix(h, oh, scale) @ img  # sparse (10 taps per output) @ dense
    return np.asarray((_resize_matrix(w, ow, scale) @ rows_done.T).T)


def _filter_replicate(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``imfilter(img, window, 'replicate')`` as MATLAB runs it on double images.

    MATLAB's ``imfilter`` splits a kernel of at least 49 elements whose SVD has rank 1 into a row and a column
    filter (``v(:,1)' * sqrt(s1)`` first, then ``u(:,1) * sqrt(s1)``). Doing the same matters: it decides the
    last bits of the MSCN map, hence whether flat pixels count as negative, zero or positive in the AGGD fit.
    """
    from scipy import ndimage

    u, s, vt = np.linalg.svd(window)
    tol = max(window.shape) * s[0] * np.finfo(np.float64).eps
    if window.size >= 49 and min(window.shape) > 1 and int((s > tol).sum()) == 1:
        row = vt[0] * np.sqrt(s[0])
        col = u[:, 0] * np.sqrt(s[0])
        out = ndimage.correlate1d(img, row, axis=1, mode="nearest")
        return ndimage.correlate1d(out, col, axis=0, mode="nearest")
    return ndimage.correlate(img, window, mode="nearest")


# ----------------------------------------------------------------------------------------------- features


def aggd_params(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``estimateaggdparam.m`` for every row of ``x`` (``B x M``) at once.

    Returns:
        ``(alpha, beta_left, beta_right)``, each of shape ``(B,)``. Rows with no negative (or no positive)
        value give NaN betas and, as in MATLAB (``min`` of an all-NaN vector returns index 1), alpha = 0.2.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = x * x
        neg, pos = x < 0, x > 0
        left_std = np.sqrt((sq * neg).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt((sq * pos).sum(axis=1) / pos.sum(axis=1))
        gammahat = left_std / right_std
        rhat = np.abs(x).mean(axis=1) ** 2 / sq.mean(axis=1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    # argmin over the table of (r - rhatnorm)^2, first index on ties: only the neighbours of the insertion
    # point can win because the table increases strictly.
    pos_i = np.searchsorted(_R_GAM, np.nan_to_num(rhatnorm, nan=0.0))
    cand = np.clip(pos_i[:, None] + np.arange(-2, 2)[None, :], 0, _R_GAM.size - 1)
    err = (_R_GAM[cand] - rhatnorm[:, None]) ** 2
    best = cand[np.arange(cand.shape[0]), np.argmin(err, axis=1)]
    best = np.where(np.isnan(rhatnorm), 0, best)
    alpha = _GAM[best]
    from scipy.special import gamma

    ratio = np.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    return alpha, left_std * ratio, right_std * ratio


def _block_features(blocks: np.ndarray) -> np.ndarray:
    """``computefeature.m`` for a stack of MSCN blocks ``B x h x w``: ``B x 18``."""
    from scipy.special import gamma

    n = blocks.shape[0]
    flat = blocks.reshape(n, -1)
    feats = []
    alpha, bl, br = aggd_params(flat)
    feats += [alpha, (bl + br) / 2]
    # circshift(structdis, [0 1; 1 0; 1 1; -1 1])
    for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):
        shifted = np.roll(blocks, shift, axis=(1, 2)).reshape(n, -1)
        alpha, bl, br = aggd_params(flat * shifted)
        mean = (br - bl) * (gamma(2.0 / alpha) / gamma(1.0 / alpha))
        feats += [alpha, mean, bl, br]
    return np.stack(feats, axis=1)


def _to_blocks(img: np.ndarray, bh: int, bw: int) -> np.ndarray:
    nh, nw = img.shape[0] // bh, img.shape[1] // bw
    return img[: nh * bh, : nw * bw].reshape(nh, bh, nw, bw).transpose(0, 2, 1, 3).reshape(nh * nw, bh, bw)


def niqe_features(gray: np.ndarray, window: np.ndarray, block_size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Per-block NIQE features of a gray image in ``[0, 255]`` (already rounded as MATLAB would).

    Args:
        gray: ``H x W`` array, at least ``block_size`` in each dimension.
        window: the 7 x 7 Gaussian of the pristine model.
        block_size: block side at the first scale (96 in the release; must be even).

    Returns:
        ``(features, sharpness)``: ``B x 36`` (18 per scale) and ``(B,)`` block means of the local deviation at
        the first scale (the selection criterion of ``estimatemodelparam.m``).
    """
    img = np.asarray(gray, dtype=np.float64)
    nh, nw = img.shape[0] // block_size, img.shape[1] // block_size
    if nh == 0 or nw == 0:
        raise InputError(
            f"metric 'niqe': the image is {img.shape[0]} x {img.shape[1]} pixels; NIQE needs at least one "
            f"{block_size} x {block_size} block."
        )
    img = img[: nh * block_size, : nw * block_size]
    per_scale = []
    sharpness = None
    for scale in range(1, SCALES + 1):
        mu = _filter_replicate(img, window)
        sigma = np.sqrt(np.abs(_filter_replicate(img * img, window) - mu * mu))
        mscn = (img - mu) / (sigma + 1)
        b = block_size // scale
        per_scale.append(_block_features(_to_blocks(mscn, b, b)))
        if scale == 1:
            sharpness = _to_blocks(sigma, b, b).mean(axis=(1, 2))
        if scale < SCALES:
            img = imresize_matlab(img, 0.5)
    return np.concatenate(per_scale, axis=1), sharpness


def _nancov(feats: np.ndarray) -> np.ndarray:
    """MATLAB ``nancov``: covariance of the rows without any NaN (normalised by n - 1)."""
    ok = feats[~np.isnan(feats).any(axis=1)]
    if ok.shape[0] < 2:
        return np.zeros((feats.shape[1], feats.shape[1]))
    return np.cov(ok, rowvar=False)


# ----------------------------------------------------------------------------------------------- model


@dataclasses.dataclass(frozen=True)
class PristineModel:
    """The multivariate Gaussian of natural-image features NIQE measures against.

    Attributes:
        mu: ``(36,)`` mean feature vector.
        cov: ``36 x 36`` covariance.
        window: ``7 x 7`` Gaussian window for the local statistics.
    """

    mu: np.ndarray
    cov: np.ndarray
    window: np.ndarray

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PristineModel:
        """Read a ``.npz`` with ``mu_pris_param``, ``cov_pris_param`` and ``gaussian_window``."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = {"mu_pris_param", "cov_pris_param", "gaussian_window"} - set(data.files)
                if missing:
                    raise DataError(
                        f"metric 'niqe': {path} is not a NIQE pristine model: it lacks {sorted(missing)} "
                        "(expected mu_pris_param 1x36, cov_pris_param 36x36, gaussian_window 7x7)."
                    )
                mu = np.asarray(data["mu_pris_param"], dtype=np.float64).reshape(-1)
                cov = np.asarray(data["cov_pris_param"], dtype=np.float64)
                window = np.asarray(data["gaussian_window"], dtype=np.float64)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"metric 'niqe': cannot read the pristine model {path}: {load_failure(exc)}.") from None
        n = FEATURES_PER_SCALE * SCALES
        if mu.shape != (n,) or cov.shape != (n, n) or window.ndim != 2:
            raise DataError(
                f"metric 'niqe': {path} has mu {mu.shape}, cov {cov.shape}, window {window.shape}; expected "
                f"({n},) or (1, {n}), ({n}, {n}) and a 2-D window."
            )
        return cls(mu, cov, window)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to exactly ``path`` in the ``.npz`` layout of BasicSR's ``niqe_pris_params.npz``.

        (Through a file handle: ``np.savez`` given a name without ``.npz`` would append it.)
        """
        with open(path, "wb") as fh:
            np.savez(fh, mu_pris_param=self.mu.reshape(1, -1), cov_pris_param=self.cov, gaussian_window=self.window)


def gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)`` normalised to sum 1 (the release uses 7 and 7/6)."""
    r = (size - 1) / 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    w = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    w[w < np.finfo(np.float64).eps * w.max()] = 0
    return w / w.sum()


def niqe_gray(gray: np.ndarray, model: PristineModel, block_size: int = 96) -> float:
    """NIQE of one gray image in ``[0, 255]`` (rounded as MATLAB would). Lower is better."""
    feats, _ = niqe_features(gray, model.window, block_size)
    with np.errstate(invalid="ignore"):
        mu_d = np.nanmean(feats, axis=0)
    cov_d = _nancov(feats)
    diff = model.mu - mu_d
    inv = np.linalg.pinv((model.cov + cov_d) / 2)
    return float(np.sqrt(diff @ inv @ diff))


def fit_pristine(
    grays: Iterable[np.ndarray],
    *,
    block_size: int = 96,
    sharpness_threshold: float = 0.75,
    window: np.ndarray | None = None,
) -> tuple[PristineModel, int]:
    """Fit a pristine model as ``estimatemodelparam.m`` does.

    From each image keep the blocks whose mean local deviation exceeds ``sharpness_threshold`` times that
    image's sharpest block, then fit ``nanmean`` / ``nancov`` to all kept blocks.

    Args:
        grays: gray images in ``[0, 255]`` (MATLAB-rounded), each at least one block in size.
        block_size: block side (96 in the release).
        sharpness_threshold: fraction of the sharpest block (0.75 in the release).
        window: Gaussian window (default ``fspecial('gaussian', 7, 7/6)``).

    Returns:
        The model and the number of blocks it was fitted on.
    """
    window = gaussian_window() if window is None else window
    kept = []
    for gray in grays:
        feats, sharp = niqe_features(gray, window, block_size)
        kept.append(feats[sharp > sharpness_threshold * sharp.max()])
    if not kept:
        raise DataError("niqe-fit: no images to fit a pristine model on.")
    allf = np.concatenate(kept, axis=0)
    allf[np.isinf(allf)] = np.nan
    usable = int((~np.isnan(allf).any(axis=1)).sum())
    if usable < MIN_FIT_BLOCKS:
        raise DataError(
            f"niqe-fit: only {usable} usable {block_size} x {block_size} block(s) were kept; a pristine model "
            f"needs at least {MIN_FIT_BLOCKS} (twice its {FEATURES_PER_SCALE * SCALES} features) or its covariance "
            "is singular and NIQE scores explode. Give more (or larger) pristine photos."
        )
    with np.errstate(invalid="ignore"):
        mu = np.nanmean(allf, axis=0)
    cov = _nancov(allf)
    if not np.isfinite(cov).all() or np.linalg.matrix_rank(cov) < cov.shape[0]:
        raise DataError(
            f"niqe-fit: the {usable} kept blocks are too alike (their feature covariance is singular); give more "
            "varied pristine photos."
        )
    return PristineModel(mu, cov, window), int(allf.shape[0])


def resolve_params_path(path: str | os.PathLike[str] | None) -> Path:
    """The pristine model's path: ``path`` if given, else ``$ZOO_NIQE_PARAMS``, else the packaged standard model.

    Example:
        >>> resolve_params_path(None).name  # with ZOO_NIQE_PARAMS unset
        'niqe_pris_params.npz'
    """
    how = (
        "Give the path of a NIQE pristine model (.npz with mu_pris_param, cov_pris_param, gaussian_window), "
        f"e.g. BasicSR's niqe_pris_params.npz: pass params=PATH to the 'niqe' metric (in a recipe or "
        f"--metrics niqe with --niqe-params PATH), or set the environment variable {ENV_VAR}=PATH. "
        "'zoo niqe-fit FOLDER -o params.npz' fits one from your own pristine photos."
    )
    if path is None or str(path) == "":
        env = os.environ.get(ENV_VAR, "")
        if not env:
            if not DEFAULT_PARAMS.is_file():
                raise DataError(f"metric 'niqe': the packaged pristine model {DEFAULT_PARAMS} is missing. {how}")
            return DEFAULT_PARAMS
        path, source = env, f"${ENV_VAR}"
    else:
        source = "params"
    p = Path(path).expanduser()
    if p.is_dir():
        raise DataError(f"metric 'niqe': the pristine model {p} (from {source}) is a folder, not a .npz file. {how}")
    if not p.is_file():
        raise DataError(f"metric 'niqe': the pristine model {p} (from {source}) does not exist. {how}")
    return p


# ----------------------------------------------------------------------------------------------- tensors


def to_uint8_numbers(images: torch.Tensor) -> np.ndarray:
    """``N x C x H x W`` in ``[0, 1]`` -> ``N x H x W x C`` float64 integers in ``[0, 255]`` (MATLAB ``im2uint8``)."""
    arr = images.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    return np.clip(matlab_round(arr * 255.0), 0, 255)


def niqe(
    images: torch.Tensor,
    model: PristineModel,
    *,
    color: Literal["gray", "y"] = "gray",
    crop_border: int = 0,
    block_size: int = 96,
) -> torch.Tensor:
    """NIQE of each image of a batch, as MATLAB computes it on the 8-bit image.

    Args:
        images: ``N x 3 x H x W`` RGB (or ``N x 1 x H x W`` gray) float in ``[0, 1]``; quantised to 8 bits first.
        model: the pristine model (:meth:`PristineModel.load`).
        color: ``"gray"`` (MATLAB ``rgb2gray``, the release's own conversion and the EnlightenGAN table's) or
            ``"y"`` (BT.601 luma of ``rgb2ycbcr``, as BasicSR's super-resolution tables use).
        crop_border: pixels removed from each border before scoring.
        block_size: block side at the first scale.

    Returns:
        ``(N,)`` float64 scores (lower is better).
    """
    from zoo.metrics._common import check_images

    x = check_images("niqe", images, channels=(1, 3))
    arr = to_uint8_numbers(x)
    out = []
    for img in arr:
        if img.shape[2] == 3:
            gray = rgb_to_gray_matlab(img) if color == "gray" else rgb_to_y_matlab(img)
        else:
            gray = img[..., 0]
        if crop_border:
            gray = gray[crop_border:-crop_border, crop_border:-crop_border]
        out.append(niqe_gray(gray, model, block_size))
    return torch.tensor(out, dtype=torch.float64)


@register("metric", "niqe", paper="Mittal et al., IEEE SPL 2013", tags=("no-reference", "enlightengan"))
class NIQE(nn.Module):
    """Natural Image Quality Evaluator, matching the MATLAB release (lower is better).

    Args:
        params: path of the pristine model ``.npz`` (``mu_pris_param``, ``cov_pris_param``,
            ``gaussian_window``); default: the environment variable ``ZOO_NIQE_PARAMS``, else the standard model
            shipped in the package (``zoo/metrics/data/niqe_pris_params.npz``, from BasicSR). Resolved at the first
            call, so a missing model fails there with a message saying how to provide it.
        color: ``gray`` (MATLAB ``rgb2gray``) or ``y`` (MATLAB ``rgb2ycbcr`` luma, BT.601).
        crop_border: pixels cropped from every border before scoring (0 = none).
        block_size: block side in pixels (96 in the release).

    Shape:
        ``pred``: ``N x 3 x H x W`` (or ``N x 1 x H x W``) in ``[0, 1]``, at least one block in each dimension;
        returns ``(N,)``.
    """

    higher_is_better = False
    needs_reference = False

    def __init__(
        self,
        params: str | None = None,
        color: Literal["gray", "y"] = "gray",
        crop_border: int = 0,
        block_size: int = 96,
    ) -> None:
        super().__init__()
        if color not in ("gray", "y"):
            raise InputError(f"metric 'niqe': color must be 'gray' or 'y', got {color!r}.")
        if block_size < 8 or block_size % 2:
            raise InputError(f"metric 'niqe': block_size must be an even number >= 8, got {block_size}.")
        if crop_border < 0:
            raise InputError(f"metric 'niqe': crop_border must be >= 0, got {crop_border}.")
        self.params = params
        self.color = color
        self.crop_border = crop_border
        self.block_size = block_size
        self._model: PristineModel | None = None

    @property
    def model(self) -> PristineModel:
        """The pristine model, loaded on first use."""
        if self._model is None:
            self._model = PristineModel.load(resolve_params_path(self.params))
        return self._model

    def forward(self, pred: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        return niqe(pred, self.model, color=self.color, crop_border=self.crop_border, block_size=self.block_size)

    def extra_repr(self) -> str:
        return f"params={self.params!r}, color={self.color!r}, crop_border={self.crop_border}"
