"""One image decoder: ``zoo.inference.read_image`` (enhance, eval, edit) reads every file as training data does.

The ICC profiles are written here byte by byte (an ICC v2 RGB matrix/TRC profile with a linear tone curve, and a
CMYK profile with an 8-bit lookup table), since no profile file ships with the test machine.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data.decode import decode_image
from zoo.errors import DataError
from zoo.inference import read_image


def _both(path) -> torch.Tensor:
    """Decode through both public paths and require bit-identical results."""
    via_inference = read_image(path)
    via_data = torch.from_numpy(decode_image(path)).permute(2, 0, 1)
    assert via_inference.dtype == torch.float32 and via_inference.shape == via_data.shape
    assert torch.equal(via_inference, via_data)
    return via_inference


# ----------------------------------------------------------------------------------------------- ICC profiles


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4 + 4 + 2 + 1 + 67)


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2.1 profile: 128-byte header, tag table, 4-byte aligned tag data."""
    table = struct.pack(">I", len(tags))
    offset = 128 + 4 + 12 * len(tags)
    data = b""
    for sig, body in tags:
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body + bytes((-len(body)) % 4)
    size = 128 + len(table) + len(data)
    header = struct.pack(">I", size) + bytes(4) + bytes([2, 0x10, 0, 0]) + device_class + space + pcs
    header += bytes(12) + b"acsp" + bytes(4 + 4 + 4 + 4 + 8) + struct.pack(">I", 0)
    header += _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(4)
    header += bytes(128 - len(header))
    return header + table + data


def linear_srgb_profile() -> bytes:
    """sRGB primaries (D50-adapted) with a gamma-1.0 tone curve: pixel values are linear light."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0100)
    tags = [
        (b"desc", _desc("linear sRGB (test)")),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(0.4360747, 0.2225045, 0.0139322)),
        (b"gXYZ", _xyz(0.3850649, 0.7168786, 0.0971045)),
        (b"bXYZ", _xyz(0.1430804, 0.0606169, 0.7141733)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text" + bytes(4) + b"public domain\0"),
    ]
    return _profile(b"mntr", b"RGB ", b"XYZ ", tags)


def cmyk_profile() -> bytes:
    """A CMYK -> Lab profile: an 8-bit lookup table on a 2-point grid (ink darkens; cyan cools, yellow warms)."""
    grid = []
    for c in (0, 1):  # the first input channel varies slowest
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    lightness = 255 * (1 - 0.85 * k) * (1 - 0.2 * (c + m + y))
                    a = 128 + 40 * m - 30 * c
                    b = 128 + 50 * y - 35 * c
                    grid.append(bytes([round(lightness), round(a), round(b)]))
    identity = bytes(range(256))
    lut = b"mft1" + bytes(4) + bytes([4, 3, 2, 0])
    lut += b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut += identity * 4 + b"".join(grid) + identity * 3
    tags = [(b"desc", _desc("test CMYK")), (b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"A2B0", lut)]
    return _profile(b"scnr", b"CMYK", b"Lab ", tags)


# ----------------------------------------------------------------------------------------------- tests


def test_16bit_rgb_png_keeps_its_precision(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    rgb[0, 0] = (257 * 100 + 7, 65535, 0)  # not a multiple of 257: an 8-bit decode would lose it
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    x = _both(path)
    assert torch.allclose(x, torch.from_numpy(rgb.astype(np.float32) / 65535.0).permute(2, 0, 1), atol=1e-7)
    assert float(x[0, 0, 0]) == pytest.approx((257 * 100 + 7) / 65535, abs=1e-7)


def test_16bit_gray_png(tmp_path):
    gray = np.array([[0, 1000, 65535], [30000, 257, 12345]], dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    x = _both(tmp_path / "g16.png")
    expect = torch.from_numpy(gray.astype(np.float32) / 65535.0)
    assert x.shape == (3, 2, 3) and torch.allclose(x, expect.expand(3, -1, -1), atol=1e-7)


def test_rgb_with_an_icc_profile_is_converted_to_srgb(tmp_path):
    from PIL import ImageCms

    icc = linear_srgb_profile()
    ImageCms.ImageCmsProfile(io.BytesIO(icc))  # a valid profile for littleCMS
    values = np.array([[[0, 64, 128], [192, 255, 32]]], dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "linear.png", icc_profile=icc)
    x = _both(tmp_path / "linear.png")
    lin = values.astype(np.float64) / 255.0
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    # the linear values were encoded to sRGB (128/255 linear is about 188/255 in sRGB), not passed through
    assert torch.allclose(x, torch.from_numpy(srgb).float().permute(2, 0, 1), atol=2.5 / 255)
    assert float(x[2, 0, 0]) > 180 / 255
    # the same pixels without the profile are read as they are
    Image.fromarray(values).save(tmp_path / "plain.png")
    assert torch.allclose(_both(tmp_path / "plain.png"), torch.from_numpy(values).permute(2, 0, 1) / 255.0)


def test_cmyk_jpeg_with_an_icc_profile(tmp_path):
    from PIL import ImageCms

    icc = cmyk_profile()
    cmyk = np.zeros((4, 4, 4), dtype=np.uint8)
    cmyk[0, :] = (0, 0, 0, 0)
    cmyk[1, :] = (255, 0, 0, 0)
    cmyk[2, :] = (0, 0, 255, 0)
    cmyk[3, :] = (0, 0, 0, 255)
    im = Image.fromarray(cmyk, mode="CMYK")
    im.save(tmp_path / "profiled.jpg", quality=100, icc_profile=icc)
    im.save(tmp_path / "bare.jpg", quality=100)
    x = _both(tmp_path / "profiled.jpg")
    with Image.open(tmp_path / "profiled.jpg") as reread:
        assert reread.mode == "CMYK" and reread.info.get("icc_profile") == icc
        ref = ImageCms.profileToProfile(
            reread, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    # the profile was used (littleCMS's conversion), not the naive (1 - c)(1 - k) formula
    assert torch.equal(x, torch.from_numpy(np.asarray(ref).astype(np.float32) / 255.0).permute(2, 0, 1))
    naive = _both(tmp_path / "bare.jpg")
    assert float((x - naive).abs().max()) > 0.1
    assert float(naive[:, 3].max()) < 0.05 and float(naive[:, 0].min()) > 0.95  # full black ink, no ink
    assert float(x[2, 1].mean()) > float(x[0, 1].mean())  # cyan ink: bluer than red in the profiled decode


def test_alpha_palette_and_orientation_decode_identically(tmp_path):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    x = _both(tmp_path / "a.png")
    a = rgba[..., 3:].astype(np.float32) / 255
    expect = rgba[..., :3].astype(np.float32) / 255 * a + (1 - a)  # composited on white
    assert torch.allclose(x, torch.from_numpy(expect).permute(2, 0, 1), atol=1e-6)
    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "p.png")
    _both(tmp_path / "p.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgba[..., :3]).save(tmp_path / "o.jpg", exif=exif.tobytes())
    assert _both(tmp_path / "o.jpg").shape == (3, 5, 6)


def test_unreadable_and_oversized_files_get_sentences(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="bad.png cannot be decoded"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(DataError, match="cannot be read"):
        read_image(tmp_path / "missing.png")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="20 = 0.0 MP, over the limit"):
        read_image(tmp_path / "big.png", max_pixels=100)
