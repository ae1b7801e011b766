"""maskdepth.imageio: every input mode, the refusals, and the PNG writers (tiny images, fast)."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from maskdepth.errors import InputError
from maskdepth.imageio import open_gray, open_image, save_png_rgb, save_png_u8, save_png_u16

W, H = 24, 16


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _noise(mode: str = "RGB", size: tuple[int, int] = (W, H)) -> Image.Image:
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "L": 1}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(arr.squeeze(-1) if channels == 1 else arr)


def _check_rgb(img: Image.Image, size: tuple[int, int] = (W, H)) -> np.ndarray:
    assert img.mode == "RGB" and img.size == size
    return np.asarray(img)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "CMYK", "1", "RGB"])
def test_plain_modes_become_rgb(mode: str, tmp_path) -> None:
    img = Image.new(mode, (W, H))
    path = tmp_path / "x.tif"  # TIFF stores all of these modes
    img.save(path)
    _check_rgb(open_image(path))
    _check_rgb(open_image(img))


def test_alpha_is_dropped_not_composited() -> None:
    rgba = Image.new("RGBA", (W, H), (10, 20, 30, 0))
    assert tuple(_check_rgb(open_image(_png_bytes(rgba)))[0, 0]) == (10, 20, 30)


def test_palette_with_transparency(tmp_path) -> None:
    p = Image.new("P", (W, H), 1)
    p.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    p.info["transparency"] = 0
    path = tmp_path / "p.png"
    p.save(path, transparency=0)
    assert tuple(_check_rgb(open_image(path))[0, 0]) == (200, 100, 50)


def test_16bit_is_scaled_not_clipped(tmp_path) -> None:
    arr = np.full((H, W), 32768, np.uint16)
    arr[0, 0] = 65535
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    out = _check_rgb(open_image(path))
    assert out[0, 0, 0] == 255 and out[1, 1, 0] == 128
    assert abs(float(open_gray(path)[1, 1]) - 32768 / 65535) < 1e-6  # open_gray keeps 16-bit precision


def test_32bit_int_and_float_modes(tmp_path) -> None:
    i32 = Image.fromarray(np.full((H, W), 65535, np.int32))
    assert _check_rgb(open_image(i32))[0, 0, 0] == 255
    f = Image.fromarray(np.full((H, W), 0.5, np.float32))
    path = tmp_path / "f.tif"
    f.save(path)
    assert _check_rgb(open_image(path))[0, 0, 0] == 128
    wide = np.linspace(-5, 5, W * H, dtype=np.float32).reshape(H, W)
    g = open_gray(Image.fromarray(wide))  # outside [0, 1]: stretched
    assert g.min() == 0.0 and g.max() == 1.0


@pytest.mark.parametrize(
    "arr",
    [
        np.full((H, W), 7, np.uint8),
        np.full((H, W, 3), 7, np.uint8),
        np.full((H, W, 4), 7, np.uint8),
        np.full((H, W, 1), 7, np.uint8),
        np.full((3, H, W), 7, np.uint8),  # channel-first, as from a tensor
        np.full((H, W, 3), 7 / 255, np.float32),
        np.full((H, W), 7 * 257, np.uint16),
    ],
    ids=["u8-hw", "u8-hwc3", "u8-hwc4", "u8-hw1", "u8-chw", "float01", "u16"],
)
def test_numpy_arrays(arr: np.ndarray) -> None:
    out = _check_rgb(open_image(arr))
    assert (out == 7).all()
    assert np.allclose(open_gray(arr), 7 / 255, atol=1e-3)


def test_numpy_refusals() -> None:
    with pytest.raises(InputError, match=r"scale it to \[0, 1\]"):
        open_image(np.full((H, W, 3), 7.0, np.float32), name="bg")
    with pytest.raises(InputError, match="shape"):
        open_image(np.zeros((H, W, 5), np.uint8))
    with pytest.raises(InputError, match="NaN"):
        open_image(np.full((H, W), np.nan, np.float32))


def test_exif_orientation_is_applied(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    path = tmp_path / "rot.jpg"
    _noise(size=(40, 20)).save(path, exif=exif.tobytes())
    assert Image.open(path).size == (40, 20)
    assert open_image(path).size == (20, 40)
    assert open_gray(path).shape == (40, 20)


def test_tiny_image_refused() -> None:
    with pytest.raises(InputError, match="too small"):
        open_image(_png_bytes(Image.new("RGB", (1, 1))), name="bg")
    with pytest.raises(InputError, match="too small"):
        open_image(np.zeros((1, 1, 3), np.uint8))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose IHDR says width x height (pixels never stored)."""
    data = bytearray(_png_bytes(Image.new("L", (8, 8))))
    ihdr = bytearray(data[16:29])  # 13 IHDR bytes after length + b"IHDR"
    ihdr[0:8] = struct.pack(">II", width, height)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return bytes(data)


def test_huge_header_refused_before_decoding(tmp_path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(10_000, 10_000))
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="too large") as info:
        open_image(path)
    assert "bomb.png" in str(info.value)
    with pytest.raises(InputError, match="too large"):  # under PIL's own limit: our max_pixels decides
        open_image(_png_claiming(3000, 3000), max_pixels=1_000_000)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_refused(fmt: str, tmp_path) -> None:
    buf = io.BytesIO()
    _noise(size=(64, 64)).save(buf, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="truncated or corrupt") as info:
        open_image(path)
    assert "cut." in str(info.value)


def test_not_an_image(tmp_path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, I am text")
    with pytest.raises(InputError, match="not an image PIL can read.*upload a PNG or JPEG") as info:
        open_image(path)
    assert "notes.png" in str(info.value)
    with pytest.raises(InputError, match="fg_bg is not an image"):
        open_image(b"plain bytes", name="fg_bg")
    with pytest.raises(InputError, match="does not exist"):
        open_image(tmp_path / "missing.png")


def test_open_gray_from_rgb_and_l(tmp_path) -> None:
    rgb = Image.new("RGB", (W, H), (255, 255, 255))
    assert np.allclose(open_gray(rgb), 1.0)
    g = open_gray(_png_bytes(Image.new("L", (W, H), 51)))
    assert g.dtype == np.float32 and g.shape == (H, W) and np.allclose(g, 0.2)


def test_png_writers_round_trip(tmp_path) -> None:
    ramp = np.linspace(0, 1, W * H, dtype=np.float32).reshape(H, W)
    save_png_u8(ramp, tmp_path / "u8.png")
    save_png_u16(ramp, tmp_path / "u16.png")
    rgb = np.asarray(_noise())
    save_png_rgb(rgb, tmp_path / "rgb.png")
    save_png_rgb(Image.fromarray(rgb).convert("L"), tmp_path / "from_pil.png")
    assert Image.open(tmp_path / "u8.png").mode == "L"
    assert Image.open(tmp_path / "u16.png").mode == "I;16"
    assert np.abs(open_gray(tmp_path / "u8.png") - ramp).max() <= 0.5 / 255 + 1e-6
    assert np.abs(open_gray(tmp_path / "u16.png") - ramp).max() <= 0.5 / 65535 + 1e-6
    assert (np.asarray(open_image(tmp_path / "rgb.png")) == rgb).all()
    assert Image.open(tmp_path / "from_pil.png").mode == "RGB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["from_pil.png", "rgb.png", "u16.png", "u8.png"]
    with pytest.raises(InputError, match="uint8"):
        save_png_rgb(rgb.astype(np.float32), tmp_path / "bad.png")
