"""Your own photos, the seed's way: reading backgrounds and RGBA cut-outs, and pasting one on the other.

A cut-out's alpha is its outline (the mask); :func:`paste` puts it, scaled to a share of the
background, at a seeded place, optionally mirrored, exactly as :mod:`maskdepth.data.make_dataset`
writes it. Every reader raises :class:`~maskdepth.errors.InputError` naming the file and the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskdepth.errors import InputError
from maskdepth.naming import IMAGE_SUFFIXES, is_image_name

# The object's longer side as a share of the background's side: drawn per placement in this range,
# like the seed's cut-outs, big enough to read at 64 px and small enough to leave the scene around it.
SHARE_RANGE = (0.3, 0.6)
OPAQUE = 250  # an alpha channel whose every pixel is at least this is no outline at all
KEY_TOLERANCE = 24  # --key-border: colours within this (max over R, G, B, of 255) count as the border's
MIN_OBJECT_PIXELS = 16  # a cut-out with fewer visible pixels is an empty outline
MAX_PIXELS = 64_000_000  # larger files are refused (decompression bombs)


@dataclass(frozen=True)
class Placement:
    """Where sample's object goes on an S x S background: top-left (x, y) and size (w, h) in pixels."""

    x: int
    y: int
    w: int
    h: int


def list_images(folder: str | Path, what: str, flag: str) -> list[Path]:
    """The image files in ``folder`` (sorted by name); InputError for a missing folder or other files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{flag} {folder} is not a folder: give the folder holding the {what}")
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    others = [p.name for p in files if not (p.is_file() and is_image_name(p.name))]
    if others:
        raise InputError(
            f"{flag} {folder} holds {len(others)} entries that are not images ({', '.join(others[:3])}"
            f"{' ...' if len(others) > 3 else ''}): move them out; images are {', '.join(IMAGE_SUFFIXES)}"
        )
    if not files:
        raise InputError(f"{flag} {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}): add the {what}")
    return files


def _open(path: Path, what: str) -> Image.Image:
    """Decode ``path`` fully (EXIF-rotated), or InputError naming it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise InputError(f"{path} is {img.width}x{img.height}: too large; shrink it below 64 MP")
                img.load()
                return ImageOps.exif_transpose(img)
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombWarning,
    ):
        raise InputError(
            f"{path} is not a readable image: remove it from the {what} or save it again"
        ) from None


def load_background(path: Path, size: int) -> Image.Image:
    """A background photo as an S x S RGB image: the largest centred square, resized (the seed's square)."""
    img = _open(path, "backgrounds").convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)


def load_cutout(path: Path, size: int, key_border: bool = False) -> Image.Image:
    """A cut-out as RGBA cropped to its outline, its longer side at most ``size``.

    Without transparency: with ``key_border`` a uniform border colour (and what touches it) becomes
    transparent; otherwise, or if the border is not one colour, InputError naming ``--key-border``.
    """
    img = _open(path, "objects")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    rgba = img.convert("RGBA")
    alpha = np.asarray(rgba)[..., 3]
    if not has_alpha or alpha.min() >= OPAQUE:
        if not key_border:
            raise InputError(
                f"{path} has no transparency, so it has no outline: save the cut-out as a PNG with a "
                "transparent background, or pass --key-border to make its uniform border colour transparent"
            )
        rgba = _key_border(rgba, path)
        alpha = np.asarray(rgba)[..., 3]
    visible = alpha > 127
    if visible.sum() < MIN_OBJECT_PIXELS:
        raise InputError(f"{path} is (almost) fully transparent: the cut-out shows no object; remove it")
    ys, xs = np.nonzero(visible)
    rgba = rgba.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    if max(rgba.size) > size:
        scale = size / max(rgba.size)
        rgba = rgba.resize(
            (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale))), Image.LANCZOS
        )
    return rgba


def _key_border(rgba: Image.Image, path: Path) -> Image.Image:
    """Make the border's colour transparent where it touches the border (holes inside the object stay)."""
    from scipy import ndimage

    rgb = np.asarray(rgba)[..., :3].astype(np.int16)
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colour = np.median(ring, axis=0)
    if np.mean(np.abs(ring - colour).max(axis=1) <= KEY_TOLERANCE) < 0.95:
        raise InputError(
            f"{path} has no transparency and its border is not one colour, so --key-border cannot find the "
            "outline: save the cut-out as a PNG with a transparent background"
        )
    near = np.abs(rgb - colour).max(axis=2) <= KEY_TOLERANCE
    labels, _ = ndimage.label(near)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge[edge > 0])
    out = np.asarray(rgba).copy()
    out[..., 3] = np.where(background, 0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGBA")


def place(cutout_size: tuple[int, int], size: int, rng: np.random.Generator) -> Placement:
    """A seeded place and size on an S x S background for a cut-out of (w, h) pixels."""
    share = rng.uniform(*SHARE_RANGE)
    scale = share * size / max(cutout_size)
    w = max(1, min(size, round(cutout_size[0] * scale)))
    h = max(1, min(size, round(cutout_size[1] * scale)))
    x = int(rng.integers(0, size - w + 1))
    y = int(rng.integers(0, size - h + 1))
    return Placement(x, y, w, h)


def paste(
    background: Image.Image, cutout: Image.Image, where: Placement, mirror: bool
) -> tuple[Image.Image, np.ndarray]:
    """The composite (RGB, like ``background``) and its mask (H, W) bool: the scaled cut-out's alpha > 0.5."""
    obj = cutout.resize((where.w, where.h), Image.LANCZOS)  # PIL resamples RGBA premultiplied
    if mirror:
        obj = obj.transpose(Image.FLIP_LEFT_RIGHT)
    composite = background.copy()
    composite.paste(obj, (where.x, where.y), obj)  # alpha-blended: soft edges as the cut-out has them
    mask = np.zeros((background.height, background.width), dtype=bool)
    mask[where.y : where.y + where.h, where.x : where.x + where.w] = np.asarray(obj)[..., 3] > 127
    return composite, mask
