"""The pasted objects: textured, shaded cut-outs (blob, vase, figure, box, star, critter) standing upright.

A foreground has a height in metres; it stands on the scene's floor at a sampled position, so it is
scaled by perspective and its depth is set by where it stands (plus a small bulge towards the camera).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from maskdepth.data.geometry import Background, sample_texture
from maskdepth.data.textures import texture_pool

SHAPE_KINDS = ("blob", "vase", "figure", "box", "star", "critter")


def shape_alpha(kind: str, params: np.ndarray, xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """Binary silhouette on normalised box coords xn in [-1, 1], yn in [0, 1] (0 = foot)."""
    if kind == "blob":
        r = np.hypot(xn, (yn - 0.5) * 2)
        ang = np.arctan2(yn - 0.5, xn)
        wobble = (
            1
            + 0.15 * np.sin(params[0] * 3 + ang * (2 + int(params[1] * 3)))
            + 0.1 * np.sin(ang * 5 + params[2] * 6)
        )
        return r < 0.88 * wobble
    if kind == "vase":
        # A lathe profile: radius as a smooth function of height.
        prof = 0.45 + 0.3 * np.sin(np.pi * (yn * (1 + params[0]) + params[1])) + 0.2 * params[2] * (1 - yn)
        return np.abs(xn) < np.clip(prof, 0.15, 1.0)
    if kind == "figure":
        head = np.hypot(xn / 0.35, (yn - 0.87) / 0.12) < 1
        body = (np.abs(xn) < 0.55 - 0.15 * params[0]) & (yn > 0.35) & (yn < 0.76)
        legs = (np.abs(np.abs(xn) - 0.22) < 0.12 + 0.05 * params[1]) & (yn <= 0.36)
        arms = (np.abs(xn) < 0.95) & (yn > 0.58 + 0.1 * params[2]) & (yn < 0.7 + 0.1 * params[2])
        return head | body | legs | arms
    if kind == "box":
        corner = 0.1 + 0.3 * params[0]
        qx, qy = np.maximum(np.abs(xn) - (1 - corner), 0), np.maximum(np.abs(yn * 2 - 1) - (1 - corner), 0)
        return np.hypot(qx, qy) < corner
    if kind == "star":
        points = 4 + int(params[0] * 4)
        r = np.hypot(xn, (yn - 0.5) * 2)
        ang = np.arctan2(yn - 0.5, xn) + params[1] * np.pi
        return r < 0.55 + 0.4 * np.abs(np.cos(ang * points / 2)) ** (1 + 2 * params[2])
    if kind == "critter":
        body = np.hypot(xn / 0.8, (yn - 0.45) / 0.3) < 1
        head = np.hypot((xn - 0.6 * (params[0] - 0.5) * 2) / 0.3, (yn - 0.8) / 0.18) < 1
        legs = (np.abs(np.abs(xn) - 0.5) < 0.1) & (yn < 0.3)
        return body | head | legs
    raise ValueError(f"unknown shape {kind!r}; valid shapes: {', '.join(SHAPE_KINDS)}")


@dataclass(frozen=True)
class Foreground:
    """A cut-out: its silhouette kind, texture and size in metres."""

    kind: str
    params: np.ndarray
    texture: np.ndarray  # (T, T, 3)
    tex_scale: float
    height: float  # metres
    aspect: float  # width / height
    bulge: float  # how far its centre stands out towards the camera, as a fraction of its width


@functools.lru_cache(maxsize=1024)
def make_foreground(seed: int, index: int) -> Foreground:
    """Foreground ``index`` of generator ``seed``."""
    rng = np.random.default_rng([seed, 2, index])
    pool = texture_pool(seed)
    kind = SHAPE_KINDS[index % len(SHAPE_KINDS)]
    tint = 0.6 + 0.6 * rng.random(3).astype(np.float32)
    tex = np.clip(pool[rng.integers(len(pool))] * tint, 0, 1)
    aspect = {"figure": 0.45, "vase": 0.5, "critter": 1.3}.get(kind, 1.0) * rng.uniform(0.7, 1.4)
    return Foreground(
        kind=kind,
        params=rng.random(3),
        texture=tex,
        tex_scale=rng.uniform(0.5, 2.0),
        height=rng.uniform(0.5, 1.7),
        aspect=aspect,
        bulge=rng.uniform(0.1, 0.5),
    )


def place(
    bg: Background, fg: Foreground, rng: np.random.Generator, lo: float = 0.3, hi: float = 0.85
) -> tuple[float, float, float]:
    """Pick where the object stands: returns (foot u, foot v, camera-space z) in pixels/metres.

    A floor pixel is chosen whose distance makes the object ``lo``-``hi`` of the image tall
    (by default 30-85%: large enough to segment at 64x64 but never filling the frame); within
    that, perspective decides the size.
    """
    z = bg.z
    fraction = fg.height * bg.focal / (np.maximum(z, 1e-3) * bg.rgb.shape[0])  # object / image height
    ok = bg.floor & (fraction > lo) & (fraction < hi)
    v_idx, u_idx = np.nonzero(ok)
    if len(v_idx) == 0:  # no floor pixel fits: take those nearest to half the image tall
        cost = np.where(bg.floor, np.abs(fraction - min(max(0.5, lo), hi)), np.inf)
        v_idx, u_idx = np.nonzero(cost <= cost.min() + 0.02)
    k = rng.integers(len(v_idx))
    return float(u_idx[k]), float(v_idx[k]), float(z[v_idx[k], u_idx[k]])


class Projection(NamedTuple):
    """An object seen by the camera, within its bounding box ``region`` of the image."""

    region: tuple[slice, slice]
    alpha: np.ndarray  # (h, w) bool silhouette
    colour: np.ndarray  # (h, w, 3) shaded texture
    z: np.ndarray  # (h, w) camera-space distance in metres


def project(bg: Background, fg: Foreground, foot: tuple[float, float, float], flip: bool) -> Projection:
    """Project ``fg`` standing upright at ``foot`` = (u, v, z) from :func:`place` into ``bg``'s camera."""
    u0, v0, z0 = foot
    h, w = bg.rgb.shape[:2]
    # Project the foot and head: the head is fg.height above the foot, seen with the camera's pitch.
    sp, cp = math.sin(bg.pitch), math.cos(bg.pitch)
    # Camera-space coords of the foot, recovered from its pixel and z.
    c = (h - 1) / 2
    y_cam_foot = -(v0 - c) / bg.focal * z0
    head_y_cam = y_cam_foot + fg.height * cp
    head_z = z0 + fg.height * sp
    v_top = c - bg.focal * head_y_cam / head_z
    box_h = max(v0 - v_top, 2.0)
    box_w = max(fg.height * fg.aspect * bg.focal / z0, 2.0)

    top, bottom = int(math.floor(v_top)), int(math.ceil(v0)) + 1
    left, right = int(math.floor(u0 - box_w / 2)), int(math.ceil(u0 + box_w / 2)) + 1
    y0, y1, x0, x1 = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
    vv, uu = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    xn = (uu - u0) / (box_w / 2)
    if flip:  # the seed's second copy: the cut-out mirrored
        xn = -xn
    yn = (v0 - vv) / box_h
    alpha = shape_alpha(fg.kind, fg.params, xn, yn) & (np.abs(xn) <= 1) & (yn >= 0) & (yn <= 1)

    # Texture in the object's own metric coordinates, shaded like a rounded object.
    width_m = fg.height * fg.aspect
    tex = sample_texture(fg.texture, (xn + 1) * width_m / 2, yn * fg.height, fg.tex_scale)
    round_ = np.sqrt(np.clip(1 - xn**2, 0, 1))
    colour = np.clip(tex * (bg.light * (0.45 + 0.65 * round_))[..., None], 0, 1)
    z_obj = z0 - fg.bulge * width_m * round_  # nearer in its middle
    return Projection((slice(y0, y1), slice(x0, x1)), alpha, colour, z_obj)
