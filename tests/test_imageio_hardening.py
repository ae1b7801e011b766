"""Hardening (issue 5), uploads: any file a user can hand the Predict tab or `predict` on the CLI.

A bad file ends in one message naming the file, its role and what is wrong (a one-line ``gr.Error``
in the app; one ``error:`` line, exit code 2 and no half-written outputs on the CLI), and any image
mode predicts at its displayed size. Each case runs through both ways in (the ``entry`` fixture).
"""

from __future__ import annotations

import random
import struct
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support.files import cut, write_bytes, write_text
from support.models import scene, write_image
from support.ui import DEFAULT_CHOICE, AppContext, gr_message, gradio_errors, predict_tab

pytestmark = pytest.mark.usefixtures("training_slot_free")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 10_000) -> Path:
    """A real, valid grey PNG of ``side`` x ``side`` pixels (100 MB decoded) in ~100 kB: zeros compress well."""
    z = zlib.compressobj(6)
    rows = (b"\x00" * (side + 1)) * 100  # filter byte 0 + a row of black pixels, 100 rows at a time
    idat = b"".join(z.compress(rows) for _ in range(side // 100)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path


def _noise(mode: str, size: tuple[int, int] = (40, 30), seed: int = 0) -> Image.Image:
    """The test scene of this size (support.models.scene: what ``write_image`` pastes into) in ``mode``,
    so that it and a background of its size are one scene; ``seed`` turns it into unrelated noise."""
    w, h = size
    rgb = (
        scene(w, h) if seed == 0 else np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    )
    image = Image.fromarray(rgb)
    if mode == "I;16":
        return Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
    if mode == "RGBA":
        image.putalpha(255)
        return image
    return image.convert(mode)


def _save(img: Image.Image, path: Path, **params: Any) -> Path:
    img.save(path, **params)
    return path


def _corrupt_idat(folder: Path) -> Path:
    """A PNG whose header is fine but whose compressed pixels are garbage."""
    data = bytearray(_save(_noise("RGB", (64, 64)), folder / "ok-big.png").read_bytes())
    start = data.index(b"IDAT") + 4
    data[start + 2 : start + 400] = bytes(range(256)) + bytes(142)
    (folder / "corrupt.png").write_bytes(bytes(data))
    return folder / "corrupt.png"


# name -> (builder(folder) -> file, what the message must say)
BAD_UPLOADS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "text-file": (lambda d: write_text(d / "notes.png", "meeting notes, not a photo"), "not an image"),
    "empty-file": (lambda d: write_text(d / "empty.jpg", ""), "not an image"),
    "truncated-png": (
        lambda d: cut(_save(_noise("RGB"), d / "full.png"), d / "cut.png"),
        "truncated or corrupt",
    ),
    "truncated-jpeg": (
        lambda d: cut(_save(_noise("RGB"), d / "full.jpg", quality=90), d / "cut.jpg"),
        "truncated or corrupt",
    ),
    "corrupt-pixels": (_corrupt_idat, "truncated or corrupt"),
    "garbage-after-png-signature": (
        lambda d: write_bytes(d / "garbage.png", b"\x89PNG\r\n\x1a\n" + random.Random(0).randbytes(2000)),
        "not an image",
    ),
    "1x1": (lambda d: _save(Image.new("RGB", (1, 1)), d / "dot.png"), "too small"),
    "bomb-10000x10000": (lambda d: bomb_png(d / "bomb.png"), "too large"),
}


def _exif_rotated(folder: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display; stored 40x30, shown 30x40
    stored = Image.fromarray(scene(30, 40)).transpose(Image.Transpose.ROTATE_90)  # shown upright: the scene
    return _save(stored, folder / "phone.jpg", exif=exif.tobytes())


# name -> (builder(folder) -> (composite, background), output size, a note about resizing expected)
GOOD_UPLOADS: dict[str, tuple[Callable[[Path], tuple[Path, Path]], tuple[int, int], bool]] = {
    "grayscale": (lambda d: (_save(_noise("L"), d / "g.png"), _bg(d)), (40, 30), False),
    "rgba": (lambda d: (_save(_noise("RGBA"), d / "a.png"), _bg(d)), (40, 30), False),
    "16-bit": (lambda d: (_save(_noise("I;16"), d / "i16.png"), _bg(d)), (40, 30), False),
    "palette": (lambda d: (_save(_noise("P"), d / "p.png"), _bg(d)), (40, 30), False),
    "cmyk-jpeg": (lambda d: (_save(_noise("CMYK"), d / "k.jpg"), _bg(d)), (40, 30), False),
    "smallest-8x8": (lambda d: (_save(_noise("RGB", (8, 8)), d / "s.png"), _bg(d, (8, 8))), (8, 8), False),
    "exif-rotated": (lambda d: (_exif_rotated(d), _bg(d, (30, 40))), (30, 40), False),
    "mismatched-bg-size": (  # the same scene shot at another size
        lambda d: (_save(_noise("RGB"), d / "c.png"), _save(_noise("RGB").resize((64, 50)), d / "bg.png")),
        (40, 30),
        True,
    ),
}


def _bg(folder: Path, size: tuple[int, int] = (40, 30)) -> Path:
    return write_image(folder / f"bg-{size[0]}x{size[1]}.png", *size, seed=9)


@pytest.mark.parametrize("role", ["composite", "background"])
@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_a_one_line_message(entry: Any, tmp_path: Path, case: str, role: str) -> None:
    build, needle = BAD_UPLOADS[case]
    bad, good = build(tmp_path), _bg(tmp_path)
    fg, bg = (bad, good) if role == "composite" else (good, bad)
    start = time.perf_counter()
    message = entry.predict_error(fg, bg, tmp_path / "out")
    assert needle in message and bad.name in message
    assert ("composite image (fg_bg)" if role == "composite" else "background image (bg)") in message
    assert time.perf_counter() - start < 5  # the bomb is refused from its header, never decoded


def test_bad_uploads_in_a_batch_are_skipped_and_named(ctx: AppContext, tmp_path: Path) -> None:
    bads = [build(tmp_path) for build, _ in BAD_UPLOADS.values()]
    good = write_image(tmp_path / "good.png", 40, 30, seed=1)
    message = gr_message(
        lambda: gradio_errors(predict_tab.predict_batch)(
            [str(p) for p in bads], [str(_bg(tmp_path))], ctx=ctx
        )
    )
    assert "no composite could be read" in message
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zip_path, summary = predict_tab.predict_batch(
            [str(good), *map(str, bads)], [str(_bg(tmp_path))], DEFAULT_CHOICE, ctx=ctx
        )
    assert f"1 of {len(bads) + 1}" in summary and all(p.name in summary for p in bads)
    assert any("could not be read" in str(w.message) for w in caught)
    with zipfile.ZipFile(zip_path) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {"README.txt", "good"}


@pytest.mark.parametrize("case", list(GOOD_UPLOADS))
def test_any_image_mode_predicts_at_its_displayed_size(entry: Any, tmp_path: Path, case: str) -> None:
    build, size, note = GOOD_UPLOADS[case]
    fg, bg = build(tmp_path)
    predicted = entry.predict(fg, bg, tmp_path / "o")
    for path in predicted.files:
        with Image.open(path) as img:
            assert img.size == size, (case, path)
    assert predicted.resized_note == note, predicted
