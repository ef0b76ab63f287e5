"""Data: decoding of every image flavour, the image_folder and synthetic datasets, augmentation, the seeded stream."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import zoo
from zoo.data.augment import RandomDarken, darken_pipeline
from zoo.data.decode import decode_image, list_images, probe
from zoo.data.loader import DataStream, SeededSampler, fixed_batch
from zoo.data.synthetic import SyntheticScenes, render_scene
from zoo.data.unpaired import sample_seed
from zoo.errors import DataError, ParameterError

# ----------------------------------------------------------------------------------------------- decoding


def _rgb(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", ["png", "bmp", "tif", "webp"])
def test_lossless_rgb_formats_roundtrip(tmp_path, ext):
    arr = _rgb()
    path = tmp_path / f"a.{ext}"
    Image.fromarray(arr).save(path, **({"lossless": True} if ext == "webp" else {}))
    out = decode_image(path)
    assert out.dtype == np.float32 and out.shape == (6, 8, 3) and out.flags.c_contiguous
    np.testing.assert_allclose(out, arr / 255.0, atol=1e-6)


def test_jpeg_decodes_close(tmp_path):
    arr = np.full((16, 16, 3), (200, 100, 50), np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.JPG", quality=95)
    np.testing.assert_allclose(decode_image(tmp_path / "a.JPG"), arr / 255.0, atol=4 / 255)


def test_grayscale_and_bilevel_replicate(tmp_path):
    g = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = decode_image(tmp_path / "g.png")
    assert out.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], g / 255.0, atol=1e-6)
    Image.fromarray(g > 100).convert("1").save(tmp_path / "b.png")
    b = decode_image(tmp_path / "b.png")
    assert set(np.unique(b)) <= {0.0, 1.0} and b[..., 0].sum() == (g > 100).sum()


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    im.info["transparency"] = 1  # index 1 (blue) is transparent
    im.save(tmp_path / "p.png", transparency=1)
    white = decode_image(tmp_path / "p.png")
    black = decode_image(tmp_path / "p.png", alpha_background="black")
    np.testing.assert_allclose(white[0, 0], [1, 0, 0])
    np.testing.assert_allclose(white[0, 1], [1, 1, 1])  # transparent over white
    np.testing.assert_allclose(black[0, 1], [0, 0, 0])


@pytest.mark.parametrize("background,bg", [("white", 1.0), ("black", 0.0)])
def test_rgba_and_la_composite_over_background(tmp_path, background, bg):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = [[255, 0], [128, 64]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = decode_image(tmp_path / "a.png", alpha_background=background)
    a = rgba[..., 3:4] / 255.0
    expected = np.concatenate([200 / 255.0 * a, 0 * a, 0 * a], axis=2) + bg * (1 - a)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    la.save(tmp_path / "la.png")
    out = decode_image(tmp_path / "la.png", alpha_background=background)
    np.testing.assert_allclose(out[..., 1], expected[..., 0], atol=1e-6)  # gray replicated, then composited


def test_bad_background_is_a_sentence(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    with pytest.raises(DataError, match="alpha_background"):
        decode_image(tmp_path / "a.png", alpha_background="grey")


def test_cmyk_without_profile(tmp_path):
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [0, 128, 255, 64]]], np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.tif")
    out = decode_image(tmp_path / "c.tif")
    c = cmyk / 255.0
    expected = (1 - c[..., :3]) * (1 - c[..., 3:4])
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(out[0, 0], [1, 1, 1])  # no ink = white
    np.testing.assert_allclose(out[0, 1], [0, 1, 1])  # full cyan


def test_cmyk_jpeg(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[..., 1] = 255  # full magenta
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "m.jpg", quality=100)
    out = decode_image(tmp_path / "m.jpg")
    np.testing.assert_allclose(out.mean(axis=(0, 1)), [1, 0, 1], atol=0.03)


def test_16bit_rgb_png_and_tiff_keep_precision(tmp_path):
    rgb16 = np.random.default_rng(1).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    for name in ("a.png", "a.tif"):
        cv2.imwrite(str(tmp_path / name), rgb16[..., ::-1])  # OpenCV writes BGR
        out = decode_image(tmp_path / name)
        np.testing.assert_allclose(out, rgb16 / 65535.0, atol=1e-6)
    # Pillow alone would have truncated to 8 bits: the error would then be up to 1/255
    assert np.abs(out * 255 - np.round(out * 255)).max() > 0.1


def test_16bit_rgba_and_gray(tmp_path):
    rgba = np.random.default_rng(2).integers(0, 65536, (3, 4, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), rgba[..., [2, 1, 0, 3]])
    a = rgba[..., 3:4] / 65535.0
    np.testing.assert_allclose(decode_image(tmp_path / "a.png"), rgba[..., :3] / 65535.0 * a + (1 - a), atol=1e-5)
    gray = np.random.default_rng(3).integers(0, 65536, (3, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = decode_image(tmp_path / "g.png")
    np.testing.assert_allclose(out[..., 2], gray / 65535.0, atol=1e-6)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_matches_pillow_transpose(tmp_path, orientation):
    from PIL import ImageOps

    arr = _rgb(4, 6, seed=orientation)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")).convert("RGB")) / 255.0
    out = decode_image(tmp_path / "o.png")
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.shape == ((6, 4, 3) if orientation >= 5 else (4, 6, 3))
    assert (probe(tmp_path / "o.png").width, probe(tmp_path / "o.png").height) == (out.shape[1], out.shape[0])
    # the 16-bit path (OpenCV) applies the same orientation by hand
    rgb16 = arr.astype(np.uint16) * 257
    (tmp_path / "o16.png").write_bytes(_png_with_exif(cv2.imencode(".png", rgb16[..., ::-1])[1].tobytes(), orientation))
    np.testing.assert_allclose(decode_image(tmp_path / "o16.png"), expected, atol=1e-6)


def _png_with_exif(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk holding one orientation tag right after IHDR."""
    import struct
    import zlib

    exif = Image.Exif()
    exif[0x0112] = orientation
    data = exif.tobytes()
    data = data[6:] if data.startswith(b"Exif\x00\x00") else data
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data + struct.pack(">I", zlib.crc32(b"eXIf" + data) & 0xFFFFFFFF)
    end_ihdr = 8 + 8 + 13 + 4
    return png[:end_ihdr] + chunk + png[end_ihdr:]


def test_corrupt_truncated_and_bomb(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="junk.png"):
        decode_image(tmp_path / "junk.png")
    with pytest.raises(DataError, match="not a readable image"):
        probe(tmp_path / "junk.png")
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(DataError, match="cut.jpg"):
        decode_image(tmp_path / "cut.jpg")
    Image.fromarray(_rgb(40, 50)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="decompression-bomb"):
        decode_image(tmp_path / "big.png", max_pixels=1000)
    with pytest.raises(DataError, match="2000 x|50 x 40"):
        probe(tmp_path / "big.png", max_pixels=1999)


def test_list_images_recursive_case_insensitive_hidden_skipped(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for p in ["a.PNG", "sub/b.jpeg", "sub/deeper/c.webp", "notes.txt", ".hidden/d.png", "._e.png"]:
        (tmp_path / p).write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.PNG", "sub/b.jpeg", "sub/deeper/c.webp"]


# ----------------------------------------------------------------------------------------------- image_folder


def _folder(root: Path, n: int, size=(20, 24), seed=0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(_rgb(*size, seed=seed + i)).save(root / f"img{i}.png")
    return root


def test_image_folder_samples_and_determinism(tmp_path):
    src, tgt = _folder(tmp_path / "low" / "nested", 3), _folder(tmp_path / "high", 5, seed=10)
    ds = zoo.create(
        "dataset", {"name": "image_folder", "source": str(tmp_path / "low"), "target": str(tgt), "crop_size": 16}
    )
    assert len(ds) == 5 and ds.n_source == 3 and ds.skipped == []
    a, b = ds[(2, 123)], ds[(2, 123)]
    assert set(a) == {"source", "target", "decode_failures"} and a["decode_failures"] == 0
    for key in ("source", "target"):
        assert a[key].shape == (3, 16, 16) and a[key].dtype == torch.float32
        assert 0 <= float(a[key].min()) and float(a[key].max()) <= 1
        torch.testing.assert_close(a[key], b[key])
    assert not torch.equal(ds[(2, 123)]["source"], ds[(2, 124)]["source"]) or not torch.equal(
        ds[(2, 123)]["target"], ds[(2, 124)]["target"]
    )
    torch.testing.assert_close(ds[1]["source"], ds[1]["source"])  # plain indexing is deterministic too
    assert src.exists()


def test_image_folder_accepts_several_folders(tmp_path):
    a, b = _folder(tmp_path / "a", 2), _folder(tmp_path / "b", 3, seed=5)
    ds = zoo.create("dataset", {"name": "image_folder", "source": [str(a), str(b)], "target": str(b), "crop_size": 8})
    assert ds.n_source == 5 and ds.n_target == 3 and len(ds) == 5


def test_image_folder_skips_bad_files_and_lists_them(tmp_path):
    src = _folder(tmp_path / "src", 2)
    (src / "broken.jpg").write_bytes(b"garbage")
    Image.fromarray(_rgb(60, 60)).save(src / "huge.png")
    tgt = _folder(tmp_path / "tgt", 2)
    with pytest.warns(UserWarning, match="skipped 2 file"):
        ds = zoo.create(
            "dataset",
            {"name": "image_folder", "source": str(src), "target": str(tgt), "crop_size": 8, "max_pixels": 1000},
        )
    assert ds.n_source == 2 and sorted(Path(p).name for p, _ in ds.skipped) == ["broken.jpg", "huge.png"]


def test_image_folder_late_decode_failure_uses_next_file(tmp_path):
    src, tgt = _folder(tmp_path / "src", 3), _folder(tmp_path / "tgt", 2)
    ds = zoo.create(
        "dataset", {"name": "image_folder", "source": str(src), "target": str(tgt), "crop_size": None, "hflip": False}
    )
    data = (src / "img1.png").read_bytes()
    (src / "img1.png").write_bytes(data[: len(data) // 2])  # truncated after the header scan
    with pytest.warns(UserWarning, match="failed to decode"):
        sample = ds[(1, 5)]
    np.testing.assert_allclose(sample["source"].permute(1, 2, 0).numpy(), _rgb(20, 24, seed=2) / 255.0, atol=1e-6)


@pytest.mark.parametrize(
    "setup,message",
    [
        ("missing", "does not exist"),
        ("empty", "holds no images"),
        ("undecodable", "none of the 2 file"),
    ],
)
def test_image_folder_errors_before_training(tmp_path, setup, message):
    tgt = _folder(tmp_path / "tgt", 1)
    src = tmp_path / "src"
    if setup != "missing":
        src.mkdir()
    if setup == "undecodable":
        (src / "a.png").write_bytes(b"x")
        (src / "b.jpg").write_bytes(b"y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=message):
            zoo.create("dataset", {"name": "image_folder", "source": str(src), "target": str(tgt)})


def test_small_images_upscaled_or_skipped(tmp_path):
    src = _folder(tmp_path / "src", 1, size=(10, 12))
    Image.fromarray(_rgb(40, 40, seed=9)).save(src / "large.png")
    tgt = _folder(tmp_path / "tgt", 1, size=(40, 40))
    up = zoo.create("dataset", {"name": "image_folder", "source": str(src), "target": str(tgt), "crop_size": 32})
    assert up.n_source == 2 and up[(0, 1)]["source"].shape == (3, 32, 32)
    with pytest.warns(UserWarning, match="smaller than crop_size"):
        skip = zoo.create(
            "dataset",
            {"name": "image_folder", "source": str(src), "target": str(tgt), "crop_size": 32, "small": "skip"},
        )
    assert skip.n_source == 1


def test_resize_and_flips_and_darken(tmp_path):
    src, tgt = _folder(tmp_path / "src", 2, size=(30, 40)), _folder(tmp_path / "tgt", 2)
    ds = zoo.create(
        "dataset",
        {
            "name": "image_folder",
            "source": str(src),
            "target": str(tgt),
            "crop_size": None,
            "resize": 16,
            "darken": 1.0,
        },
    )
    s = ds[(0, 7)]
    assert s["source"].shape == s["target"].shape == s["source_original"].shape == (3, 16, 16)
    ratio = s["source_original"].sum() / s["source"].sum()
    assert 2.0 <= float(ratio) <= 4.0


# ----------------------------------------------------------------------------------------------- augmentation


@given(p=st.sampled_from([0.0, 1.0]), low=st.floats(1.0, 3.0), width=st.floats(0.0, 2.0), seed=st.integers(0, 2**31))
@settings(max_examples=25, deadline=None)
def test_random_darken_divides_by_a_factor_in_range(p, low, width, seed):
    import random

    img = np.random.default_rng(seed).random((5, 6, 3)).astype(np.float32) + 0.05
    pipe = darken_pipeline(p, (low, low + width))
    if p == 0.0:
        assert pipe is None
        return
    pipe.set_random_state(np.random.default_rng(seed), random.Random(seed))
    out = pipe(image=img)["image"]
    ratio = img / out
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-5)  # one factor for the whole image
    assert low - 1e-5 <= ratio.flat[0] <= low + width + 1e-5


def test_random_darken_rejects_bad_factors():
    with pytest.raises(ParameterError, match="darken_factor"):
        darken_pipeline(0.5, (0.5, 2.0))
    with pytest.raises(ParameterError, match="probability"):
        darken_pipeline(1.5, (2.0, 4.0))
    assert RandomDarken(factor=(2.0, 2.0), p=1.0).get_transform_init_args_names() == ("factor",)


# ----------------------------------------------------------------------------------------------- synthetic


def _luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]


def test_synthetic_is_deterministic_and_sized():
    a = zoo.create("dataset", {"name": "synthetic", "size": 4, "height": 24, "width": 40, "seed": 5})
    b = zoo.create("dataset", {"name": "synthetic", "size": 4, "height": 24, "width": 40, "seed": 5, "cache": False})
    c = zoo.create("dataset", {"name": "synthetic", "size": 4, "height": 24, "width": 40, "seed": 6})
    assert len(a) == 4
    for i in range(4):
        sa, sb = a[(i, 11)], b[(i, 11)]
        assert sa["source"].shape == (3, 24, 40)
        torch.testing.assert_close(sa["source"], sb["source"])
        torch.testing.assert_close(sa["target"], sb["target"])
    assert not torch.equal(a[(0, 11)]["target"], c[(0, 11)]["target"])
    big = a.source_image(1, 60, 90)
    assert big.shape == (60, 90, 3) and big.dtype == np.float32


def test_synthetic_targets_well_exposed_sources_dark_and_other_scenes():
    ds = SyntheticScenes(size=6, height=48, width=64, seed=0)
    tgt = np.array([float(_luma(torch.from_numpy(ds.target_image(i)).permute(2, 0, 1)).median()) for i in range(6)])
    src = np.array([float(_luma(torch.from_numpy(ds.source_image(i)).permute(2, 0, 1)).median()) for i in range(6)])
    assert np.all((tgt > 0.35) & (tgt < 0.65)), tgt
    assert np.all(src < tgt * 0.85) and src.mean() < 0.6 * tgt.mean(), (src, tgt)

    def corr(x: np.ndarray, y: np.ndarray) -> float:
        gx, gy = cv2.Laplacian(x.mean(2), cv2.CV_32F), cv2.Laplacian(y.mean(2), cv2.CV_32F)
        gx, gy = cv2.GaussianBlur(np.abs(gx), (0, 0), 2), cv2.GaussianBlur(np.abs(gy), (0, 0), 2)
        return float(np.corrcoef(gx.ravel(), gy.ravel())[0, 1])

    for i in range(3):  # a source is a degraded version of its OWN scene, not of the target with its index
        own = render_scene(np.random.default_rng(sample_seed(0, 1, i)), 48, 64)
        assert corr(ds.source_image(i), own) > corr(ds.source_image(i), ds.target_image(i)) + 0.2


def test_synthetic_rejects_bad_sizes():
    with pytest.raises(DataError, match="size"):
        SyntheticScenes(size=0)
    with pytest.raises(DataError, match="at least 8"):
        SyntheticScenes(height=4)
    with pytest.raises(DataError, match="exposure"):
        SyntheticScenes(exposure=(0.5, 0.2))


# ----------------------------------------------------------------------------------------------- stream


def _tiny_synthetic(**kw):
    return SyntheticScenes(size=10, height=16, width=16, seed=1, **kw)


def test_stream_is_resumable_and_worker_independent():
    ds = _tiny_synthetic()
    ref = DataStream(ds, batch_size=3, seed=4)
    batches = [next(ref)["source"] for _ in range(7)]  # 3 batches per epoch: crosses two epoch boundaries
    assert ref.position == 7
    resumed = DataStream(ds, batch_size=3, seed=4)
    resumed.seek(4)
    for k in range(4, 7):
        torch.testing.assert_close(next(resumed)["source"], batches[k])
    workers = DataStream(ds, batch_size=3, seed=4, num_workers=2)
    try:
        for k in range(4):
            torch.testing.assert_close(next(workers)["source"], batches[k])
    finally:
        workers.close()
    other = DataStream(ds, batch_size=3, seed=5)
    assert not torch.equal(next(other)["source"], batches[0])
    assert not torch.equal(batches[0], batches[3])  # a new epoch reshuffles


def test_sampler_shards_like_distributed_sampler_and_pads_tiny_sets():
    ds = _tiny_synthetic()
    r0 = SeededSampler(ds, num_replicas=2, rank=0, seed=1)
    r1 = SeededSampler(ds, num_replicas=2, rank=1, seed=1)
    i0, i1 = [i for i, _ in r0], [i for i, _ in r1]
    assert sorted(i0 + i1) == list(range(10)) and not set(i0) & set(i1)
    seeds = [s for _, s in r0] + [s for _, s in r1]
    assert len(set(seeds)) == len(seeds)
    tiny = SyntheticScenes(size=2, height=16, width=16)
    stream = DataStream(tiny, batch_size=5, seed=0)
    assert next(stream)["source"].shape == (5, 3, 16, 16)


def test_fixed_batch_is_fixed():
    ds = _tiny_synthetic(crop_size=8)
    a, b = fixed_batch(ds, 3, seed=2), fixed_batch(ds, 3, seed=2)
    assert a["source"].shape == (3, 3, 8, 8)
    torch.testing.assert_close(a["source"], b["source"])
