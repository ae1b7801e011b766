"""Reading any image a user can hand us, safely, and writing PNGs atomically.

``open_image`` is the one door for RGB inputs (files, bytes, PIL images, numpy arrays);
``open_gray`` is the one door for mask / depth targets (keeps 16-bit precision).
Both refuse what they cannot use with an ``InputError`` that names the file and the fix.

Mode handling (documented once, here):
- EXIF orientation is applied (``ImageOps.exif_transpose``).
- Alpha (``LA``, ``RGBA``, ``PA``, palette transparency) is dropped, not composited: the
  colour stored under transparent pixels is kept. Our inputs are photos; a cut-out with
  alpha is a foreground, not a ``bg`` / ``fg_bg`` photo.
- 16-bit grey (``I;16*``) is scaled by 255/65535, never clipped. 32-bit int ``I`` in
  [0, 65535] is treated as 16-bit; outside that range it is min-max stretched.
- 32-bit float ``F`` in [0, 1] is used as is; outside that range it is min-max stretched.
- ``CMYK``, ``1``, ``YCbCr`` and other modes PIL can convert go through ``convert("RGB")``.
- numpy arrays: (H, W), (H, W, 1|3|4) or channel-first (1|3|4, H, W); dtypes uint8,
  uint16, bool, float in [0, 1]; other integer dtypes in [0, 255] (8-bit) or [0, 65535]
  (16-bit).
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskdepth.errors import InputError
from maskdepth.fileio import atomic_path

MAX_PIXELS = 40_000_000  # 40 megapixels: far above any photo we need, far below a bomb
MIN_SIDE = 8  # smaller images carry no usable mask / depth signal

ImageSource = str | os.PathLike | bytes | bytearray | Image.Image | np.ndarray

_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# What a broken or hostile file makes PIL raise, at open or at decode time.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as PIL's convert("L")


# ---------------------------------------------------------------- reading


def open_image(src: ImageSource, *, max_pixels: int = MAX_PIXELS, name: str = "image") -> Image.Image:
    """Open ``src`` as an 8-bit RGB ``PIL.Image`` (H, W, 3), or raise ``InputError`` naming ``name``."""
    if isinstance(src, np.ndarray):
        label = name
        data = _array_to_float01(src, label, max_pixels)
        if data.dtype == np.uint8:
            arr = data
        else:
            arr = _float01_to_u8(data)
        img = Image.fromarray(arr)
        return img if img.mode == "RGB" else img.convert("RGB")
    img, label = _load(src, max_pixels=max_pixels, name=name)
    return _pil_to_rgb(img, label)


def open_gray(src: ImageSource, *, max_pixels: int = MAX_PIXELS, name: str = "image") -> np.ndarray:
    """Open ``src`` as a float32 grey array (H, W) in [0, 1] (16-bit files keep their precision)."""
    if isinstance(src, np.ndarray):
        data = _array_to_float01(src, name, max_pixels)
        data = data.astype(np.float32) / 255.0 if data.dtype == np.uint8 else data
        return data @ _LUMA if data.ndim == 3 else data.astype(np.float32)
    img, label = _load(src, max_pixels=max_pixels, name=name)
    if img.mode in _HIGH_DEPTH_MODES:
        return _high_depth_to_float01(img)
    if img.mode != "L":
        img = _pil_to_rgb(img, label).convert("L")
    return np.asarray(img, dtype=np.float32) / 255.0


def _load(src: ImageSource, *, max_pixels: int, name: str) -> tuple[Image.Image, str]:
    """Open, size-check from the header, fully decode and EXIF-transpose; returns (image, label)."""
    if isinstance(src, Image.Image):
        label = name
        _check_size(src.size, label, max_pixels)
        try:
            src.load()
        except _DECODE_ERRORS as e:
            raise InputError(f"{label} is truncated or corrupt ({e}): save it again as PNG or JPEG") from e
        return _exif_transpose(src), label

    if isinstance(src, (bytes, bytearray)):
        label = name
        fp = io.BytesIO(src)
        return _decode(fp, label, max_pixels, sniff=bytes(src[:16]), nbytes=len(src)), label

    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        label = str(path) if name == "image" else f"{name} ({path})"
        try:
            with open(path, "rb") as fp:
                sniff = fp.read(16)
                fp.seek(0)
                nbytes = os.fstat(fp.fileno()).st_size
                return _decode(fp, label, max_pixels, sniff=sniff, nbytes=nbytes), label
        except FileNotFoundError as e:
            raise InputError(f"{label} does not exist: check the path") from e
        except IsADirectoryError as e:
            raise InputError(f"{label} is a folder, not an image: give the path of an image file") from e
        except PermissionError as e:
            raise InputError(f"{label} cannot be read (permission denied): fix its permissions") from e
        except OSError as e:
            raise InputError(f"{label} cannot be read ({e}): check the path and the disk") from e

    raise InputError(
        f"{name}: cannot open an object of type {type(src).__name__}; "
        "give a file path, bytes, a PIL image or a numpy array"
    )


def _decode(fp: io.IOBase, label: str, max_pixels: int, *, sniff: bytes, nbytes: int) -> Image.Image:
    """Header check first (bomb guard), then a forced full decode; the result no longer needs ``fp``."""
    with warnings.catch_warnings():
        # Between 1x and 2x its global limit PIL only warns (and decodes nothing yet): ``max_pixels``
        # decides, below, with a message naming our limit. Over 2x PIL refuses on its own.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)
        except UnidentifiedImageError as e:
            raise InputError(
                f"{label} is not an image PIL can read (got {nbytes} bytes starting with {sniff!r}): "
                "upload a PNG or JPEG"
            ) from e
        except Image.DecompressionBombError as e:
            found = re.search(r"\((\d+) pixels\)", str(e))
            size = f"{int(found.group(1)):,} pixels" if found else "over PIL's limit"
            raise InputError(
                f"{label} is too large to open safely ({size}, limit {max_pixels:,}): "
                "resize it to a smaller image first"
            ) from e
        except _DECODE_ERRORS as e:
            raise InputError(f"{label} is truncated or corrupt ({e}): save it again as PNG or JPEG") from e
    _check_size(img.size, label, max_pixels)  # from the header, before any pixel is decoded
    try:
        img.load()  # force the full decode here, so truncated files fail now, not later
    except _DECODE_ERRORS as e:
        raise InputError(f"{label} is truncated or corrupt ({e}): save it again as PNG or JPEG") from e
    return _exif_transpose(img)


def _check_size(size: tuple[int, int], label: str, max_pixels: int) -> None:
    """Refuse images over ``max_pixels`` or with a side under ``MIN_SIDE``."""
    w, h = size
    if w * h > max_pixels:
        raise InputError(
            f"{label} is too large to open safely ({w}x{h} = {w * h:,} pixels, limit {max_pixels:,}): "
            "resize it to a smaller image first"
        )
    if w < MIN_SIDE or h < MIN_SIDE:
        raise InputError(
            f"{label} is too small ({w}x{h} pixels): use an image at least {MIN_SIDE}x{MIN_SIDE}"
        )


def _exif_transpose(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a malformed EXIF block is ignored (the pixels are fine)."""
    try:
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS + (TypeError, KeyError):
        return img


def _pil_to_rgb(img: Image.Image, label: str) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (alpha dropped, 16-bit / float scaled, not clipped)."""
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_float01_to_u8(_high_depth_to_float01(img))).convert("RGB")
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # applies palette transparency; alpha is then dropped below
    try:
        return img.convert("RGB")
    except ValueError as e:
        raise InputError(
            f"{label} has pixel mode {img.mode!r}, which cannot be converted to RGB: "
            "save it as an RGB PNG or JPEG"
        ) from e


def _high_depth_to_float01(img: Image.Image) -> np.ndarray:
    """(H, W) float32 in [0, 1] from an ``I;16*``, ``I`` or ``F`` image (see the module docstring)."""
    arr = np.asarray(img).astype(np.float32)
    if img.mode.startswith("I;16"):
        return arr / 65535.0
    if img.mode == "F":
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            return arr
        return _stretch(arr, lo, hi)
    lo, hi = float(arr.min()), float(arr.max())  # mode "I"
    if lo >= 0.0 and hi <= 65535.0:
        return arr / 65535.0
    return _stretch(arr, lo, hi)


def _stretch(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Min-max scale ``arr`` to [0, 1] (all zeros when constant)."""
    if hi <= lo:
        return np.zeros_like(arr, dtype=np.float32)
    return ((arr - lo) / (hi - lo)).astype(np.float32)


def _float01_to_u8(arr: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 with rounding (values outside are clipped)."""
    return np.clip(np.rint(np.asarray(arr, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def _array_to_float01(arr: np.ndarray, label: str, max_pixels: int) -> np.ndarray:
    """Validate a user array; returns (H, W) or (H, W, 3): uint8 as is, anything else float32 in [0, 1]."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # channel-first (C, H, W), e.g. from a tensor
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(
            f"{label} has array shape {tuple(np.shape(arr))}: give (H, W), (H, W, 3) or (H, W, 4)"
        )
    _check_size((a.shape[1], a.shape[0]), label, max_pixels)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]  # drop alpha (see the module docstring)

    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise InputError(
                f"{label} contains NaN or infinite values: replace them before passing the array"
            )
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(
                f"{label} is a float array with values in [{lo:g}, {hi:g}]; "
                "scale it to [0, 1] (e.g. divide by 255) or pass it as uint8"
            )
        return a
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 255:
            return a.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return a.astype(np.float32) / 65535.0
        raise InputError(
            f"{label} is an integer array with values in [{lo}, {hi}]: convert it to uint8 or uint16"
        )
    raise InputError(f"{label} has array dtype {a.dtype}: give uint8, uint16 or float in [0, 1]")


# ---------------------------------------------------------------- writing


def save_image(img: Image.Image, path: str | os.PathLike, **save_params: object) -> Path:
    """Save ``img`` atomically (temp file in the same folder + ``os.replace``); format from the suffix."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown image suffix {path.suffix!r}; use .png or .jpg")
    if fmt == "PNG":
        # zlib level 1: about 3x faster than PIL's default 6 for a few % larger files; outputs
        # are written on every prediction, so encode time is latency users feel (bench/ section 3).
        save_params.setdefault("compress_level", 1)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            img.save(f, format=fmt, **save_params)
    return path


def save_png_u8(array_hw_float01: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a (H, W) float array in [0, 1] as an 8-bit grey PNG (values clipped to [0, 1])."""
    arr = _as_hw(array_hw_float01, path)
    return save_image(Image.fromarray(_float01_to_u8(arr)), path)


def save_png_u16(array_hw_float01: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a (H, W) float array in [0, 1] as a 16-bit grey PNG (mode ``I;16``)."""
    arr = _as_hw(array_hw_float01, path)
    u16 = np.clip(np.rint(arr * 65535.0), 0, 65535).astype(np.uint16)
    return save_image(Image.fromarray(u16), path)


def save_png_rgb(image: np.ndarray | Image.Image, path: str | os.PathLike) -> Path:
    """Write an RGB image, (H, W, 3) uint8 array or PIL image, as an 8-bit RGB PNG."""
    if isinstance(image, Image.Image):
        img = image if image.mode == "RGB" else image.convert("RGB")
    else:
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise InputError(
                f"{path}: save_png_rgb needs a (H, W, 3) uint8 array, got shape {arr.shape} "
                f"dtype {arr.dtype}: convert with (x * 255).round().astype('uint8')"
            )
        img = Image.fromarray(np.ascontiguousarray(arr))
    return save_image(img, path)


def rgb_tile(array_hw3_float01: np.ndarray) -> np.ndarray:
    """(H, W, 3) floats in [0, 1] -> (H, W, 3) uint8 (rounded, clipped): a tile of a sample grid or gallery."""
    return _float01_to_u8(array_hw3_float01)


def grey_tile(array_hw_float01: np.ndarray) -> np.ndarray:
    """(H, W) floats in [0, 1] (a mask) -> (H, W, 3) uint8 grey, to sit in a row of colour tiles."""
    return np.repeat(_float01_to_u8(array_hw_float01)[..., None], 3, axis=-1)


def _as_hw(arr: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """(H, W) float32 from (H, W) or (1, H, W) array-likes (numpy or CPU tensors)."""
    a = np.asarray(arr, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise InputError(f"{path}: expected a (H, W) array in [0, 1], got shape {a.shape}")
    return np.nan_to_num(a, nan=0.0)
