"""Camera geometry shared by every scene family: rays, textures in metres, boxes, the depth convention.

A scene is ray-cast by a pinhole camera at SUPERSAMPLE x the output size and averaged down, so
edges and textures are anti-aliased; its depth follows exactly from the geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from maskdepth.data.textures import TEXTURE_SIZE

Z_REF = 1.0  # metres; a surface at Z_REF (or nearer) has depth value 1
DEPTH_CONVENTION = (
    "near = 1, far = 0: depth = clip(Z_REF / z, 0, 1) with z the camera-space distance in metres "
    f"and Z_REF = {Z_REF} m (inverse depth, like the seed's monocular-network maps)"
)
SUPERSAMPLE = 2  # render at 2x and average down: anti-aliased edges and textures


@dataclass(frozen=True)
class Background:
    """A rendered scene at the supersampled resolution (H, W) = SUPERSAMPLE * output size."""

    rgb: np.ndarray  # (H, W, 3) float32
    z: np.ndarray  # (H, W) camera-space distance in metres (inf where the sky is seen)
    floor: np.ndarray  # (H, W) bool, pixels of the surface objects stand on
    focal: float  # focal length in pixels
    height: float  # camera height in metres above the standing surface
    pitch: float  # downward tilt in radians
    light: float  # overall light level, reused to shade the pasted object
    haze: tuple[float, float, float] | None = None  # aerial-perspective colour (None: no haze)
    haze_distance: float = math.inf  # metres at which 1 - 1/e of a surface's colour is haze


def camera_rays(height: int, width: int, focal: float, pitch: float) -> np.ndarray:
    """World-space ray directions with unit forward component, (H, W, 3).

    With that scaling the ray parameter t of a hit equals its camera-space depth z.
    """
    cv, cu = (height - 1) / 2, (width - 1) / 2
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = (u - cu) / focal, -(v - cv) / focal
    sp, cp = math.sin(pitch), math.cos(pitch)
    # right = (1, 0, 0), up = (0, cos, sin), forward = (0, -sin, cos)
    return np.stack([dx, dy * cp - sp, dy * sp + cp], axis=-1)


def sample_texture(tex: np.ndarray, a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Look up a tileable texture at surface coordinates (a, b) in metres, (..., 3)."""
    ia = (np.floor(a * scale * TEXTURE_SIZE).astype(np.int64)) % TEXTURE_SIZE
    ib = (np.floor(b * scale * TEXTURE_SIZE).astype(np.int64)) % TEXTURE_SIZE
    return tex[ib, ia]


def hit_box(
    d: np.ndarray,
    cam: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    t: np.ndarray,
    surface: np.ndarray,
    normal: np.ndarray,
    first_id: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersect an axis-aligned box (corners lo, hi) and keep it where it is the nearest hit.

    Slab intersection; the face hit is labelled first_id + slab axis (0 x, 1 y, 2 z).
    Returns the updated (t, surface, normal).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - cam) / d, (hi - cam) / d
    tnear = np.minimum(t1, t2)
    t_in, axis = tnear.max(-1), tnear.argmax(-1)
    t_out = np.maximum(t1, t2).min(-1)
    hit = (t_in <= t_out) & (t_in > 0) & (t_in < t)
    t = np.where(hit, t_in, t)
    surface = np.where(hit, first_id + axis, surface)
    box_normal = np.zeros_like(d)  # the entry face faces against the ray on its slab axis
    np.put_along_axis(box_normal, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1)
    normal = np.where(hit[..., None], box_normal, normal)
    return t, surface, normal


def apply_haze(rgb: np.ndarray, z: np.ndarray, colour, distance: float) -> np.ndarray:
    """Aerial perspective: blend towards ``colour`` by 1 - exp(-z / distance); the sky (z = inf) is left."""
    if colour is None or not math.isfinite(distance):
        return rgb
    finite = np.isfinite(z)
    keep = np.exp(-np.where(finite, z, 0) / distance)[..., None]
    hazed = rgb * keep + np.asarray(colour, np.float32) * (1 - keep)
    return np.where(finite[..., None], hazed, rgb).astype(np.float32)


def downsample(a: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor blocks: (H, W, ...) -> (H/f, W/f, ...)."""
    if factor == 2:  # the common case, 6x faster; sums in the order numpy's mean used (same bits)
        if a.ndim == 2:
            return ((a[0::2, 0::2] + a[0::2, 1::2]) + (a[1::2, 0::2] + a[1::2, 1::2])) / 4
        return (((a[0::2, 0::2] + a[0::2, 1::2]) + a[1::2, 0::2]) + a[1::2, 1::2]) / 4
    h, w = a.shape[0] // factor, a.shape[1] // factor
    return a.reshape(h, factor, w, factor, *a.shape[2:]).mean(axis=(1, 3))


def depth_from_z(z: np.ndarray) -> np.ndarray:
    """Camera-space distance in metres -> depth value in [0, 1] (see DEPTH_CONVENTION); the sky is 0."""
    return np.clip(Z_REF / np.maximum(z, 1e-6), 0.0, 1.0).astype(np.float32)
