"""A deterministic pool of RGB textures for the scene generator.

Procedural kinds (fBm noise, stripes, tiles, bricks, planks, dots, gradients) plus crops of
the public-domain photographs that scikit-image ships (``skimage/data/*.png``), so the
model sees real-photo statistics as well as clean patterns.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
from PIL import Image

TEXTURE_SIZE = 128  # square side of every pooled texture, in texels
PROCEDURAL_KINDS = ("noise", "stripes", "tiles", "bricks", "planks", "dots", "gradient", "checker")
# Photographs shipped inside scikit-image whose skimage.data docstrings state public-domain / CC0 /
# "no known copyright restrictions" terms (photos without stated terms, e.g. the Middlebury
# motorcycle, are left out). They are read from the installed package, not redistributed.
PHOTO_FILES = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "coins.png",
    "camera.png",
    "horse.png",
)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour in [0, 1] with varied saturation and brightness, shape (3,)."""
    hue = rng.uniform(0, 1)
    sat = rng.uniform(0.1, 0.9)
    val = rng.uniform(0.25, 1.0)
    rgb = np.clip(np.abs(((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6) - 3) - 1, 0, 1)
    return (val * (1 - sat + sat * rgb)).astype(np.float32)


def fbm(rng: np.random.Generator, size: int, octaves: int = 4) -> np.ndarray:
    """Fractal value noise in [0, 1], shape (size, size); tiles seamlessly."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        grid = rng.random((cells, cells)).astype(np.float32)
        # Wrap-around bilinear upsampling keeps the texture tileable.
        coords = np.arange(size, dtype=np.float32) * cells / size
        i0 = np.floor(coords).astype(int) % cells
        i1 = (i0 + 1) % cells
        f = coords - np.floor(coords)
        f = f * f * (3 - 2 * f)
        rows = grid[i0] * (1 - f)[:, None] + grid[i1] * f[:, None]
        layer = rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]
        out += amp * layer
        total += amp
        amp *= 0.5
    return out / total


def _procedural(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """One procedural texture of the given kind, float32 (size, size, 3) in [0, 1]."""
    c1, c2 = _random_colour(rng), _random_colour(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    noise = fbm(rng, size)
    if kind == "noise":
        t = noise
    elif kind == "stripes":
        freq = rng.integers(2, 9)
        t = (np.sin(2 * np.pi * freq * (xx if rng.random() < 0.5 else yy) + 3 * noise) > 0).astype(np.float32)
    elif kind == "checker":
        n = rng.integers(2, 9)
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
    elif kind == "tiles":
        n = rng.integers(2, 7)
        grout = 0.04 + 0.04 * rng.random()
        fx, fy = (xx * n) % 1, (yy * n) % 1
        t = ((fx > grout) & (fy > grout)).astype(np.float32) * (0.8 + 0.2 * noise)
    elif kind == "bricks":
        rows = rng.integers(4, 11)
        cols = max(2, rows // 2)
        row = np.floor(yy * rows)
        fx = (xx * cols + 0.5 * (row % 2)) % 1
        fy = (yy * rows) % 1
        t = ((fx > 0.05) & (fy > 0.1)).astype(np.float32) * (0.75 + 0.25 * noise)
    elif kind == "planks":
        n = rng.integers(3, 9)
        grain = np.sin(2 * np.pi * (yy * 40 + 6 * noise)) * 0.5 + 0.5
        t = ((xx * n) % 1 > 0.03).astype(np.float32) * (0.6 + 0.4 * grain)
    elif kind == "dots":
        n = rng.integers(3, 9)
        fx, fy = (xx * n) % 1 - 0.5, (yy * n) % 1 - 0.5
        t = (fx**2 + fy**2 < rng.uniform(0.03, 0.15)).astype(np.float32)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy + 0.2 * noise) % 1
    else:
        raise ValueError(f"unknown texture kind {kind!r}; valid kinds: {', '.join(PROCEDURAL_KINDS)}")
    tex = c1[None, None] * (1 - t[..., None]) + c2[None, None] * t[..., None]
    # A little broadband noise so no surface is perfectly flat in colour.
    tex *= 0.9 + 0.2 * noise[..., None]
    return np.clip(tex, 0, 1).astype(np.float32)


@functools.cache
def _photos() -> tuple[np.ndarray, ...]:
    """The scikit-image photographs as float32 RGB arrays (empty if not installed)."""
    try:
        root = resources.files("skimage") / "data"
    except ModuleNotFoundError:
        return ()
    photos = []
    for name in PHOTO_FILES:
        path = root / name
        if not path.is_file():
            continue
        with Image.open(path) as img:
            photos.append(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0)
    return tuple(photos)


def _photo_crop(rng: np.random.Generator, size: int) -> np.ndarray | None:
    """A random crop of a shipped photograph, colour-jittered, (size, size, 3), or None."""
    photos = _photos()
    if not photos:
        return None
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.25, 0.9) * min(h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = Image.fromarray((photo[y : y + side, x : x + side] * 255).astype(np.uint8))
    arr = np.asarray(crop.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    tint = 0.7 + 0.6 * rng.random(3).astype(np.float32)
    return np.clip(arr * tint, 0, 1)


@functools.cache
def texture_pool(seed: int = 0, count: int = 96, size: int = TEXTURE_SIZE) -> np.ndarray:
    """``count`` textures, float32 (count, size, size, 3); the same on every machine for a seed.

    About a third are photo crops when scikit-image is installed; the rest procedural.
    """
    rng = np.random.default_rng([seed, 7919])
    textures = []
    for i in range(count):
        tex = _photo_crop(rng, size) if i % 3 == 2 else None
        if tex is None:
            tex = _procedural(PROCEDURAL_KINDS[rng.integers(len(PROCEDURAL_KINDS))], rng, size)
        textures.append(tex)
    return np.stack(textures)


def photo_indices(seed: int = 0) -> np.ndarray:
    """Indices of the photo crops in ``texture_pool(seed)`` (empty when scikit-image is not installed)."""
    count = len(texture_pool(seed))
    return np.arange(2, count, 3) if _photos() else np.arange(0)
