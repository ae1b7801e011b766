"""The embedded dataset: procedural rooms with objects pasted in, following the seed's recipe.

The seed pasted each of 100 foreground cut-outs on each of 100 backgrounds at 20 random
positions, and again horizontally flipped (100 x 100 x 20 x 2 = 400,000 samples). We do
the same with generated scenes, so every sample has an exact mask and an exact depth map:

- a background is a room seen by a pinhole camera (floor, back wall, side walls, ceiling
  and a few boxes standing on the floor), each surface textured in perspective and lit
  by a point light; its depth follows from the geometry;
- a foreground is a textured, shaded cut-out (blob, vase, figure, box, star, critter)
  with a height in metres; it stands upright on the floor at a sampled position, so it
  is scaled by perspective and its depth is set by where it stands (plus a small bulge).

Sample ``i`` is a pure function of (seed, i): the same on every machine.
Depth convention: see :data:`DEPTH_CONVENTION`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from maskdepth.data.textures import TEXTURE_SIZE, texture_pool

Z_REF = 1.0  # metres; a surface at Z_REF (or nearer) has depth value 1
DEPTH_CONVENTION = (
    "near = 1, far = 0: depth = clip(Z_REF / z, 0, 1) with z the camera-space distance in metres "
    f"and Z_REF = {Z_REF} m (inverse depth, like the seed's monocular-network maps)"
)
SUPERSAMPLE = 2  # render at 2x and average down: anti-aliased edges and textures
SHAPE_KINDS = ("blob", "vase", "figure", "box", "star", "critter")


@dataclass(frozen=True)
class Background:
    """A rendered room at the supersampled resolution S = SUPERSAMPLE * size."""

    rgb: np.ndarray  # (S, S, 3) float32
    z: np.ndarray  # (S, S) camera-space distance in metres
    floor: np.ndarray  # (S, S) bool, pixels where the floor is visible
    focal: float  # focal length in pixels
    height: float  # camera height in metres
    pitch: float  # downward tilt in radians
    light: float  # overall light level, reused to shade the pasted object


def _camera_rays(size: int, focal: float, pitch: float) -> np.ndarray:
    """World-space ray directions with unit forward component, (S, S, 3).

    With that scaling the ray parameter t of a hit equals its camera-space depth z.
    """
    c = (size - 1) / 2
    v, u = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = (u - c) / focal, -(v - c) / focal
    sp, cp = math.sin(pitch), math.cos(pitch)
    # right = (1, 0, 0), up = (0, cos, sin), forward = (0, -sin, cos)
    return np.stack([dx, dy * cp - sp, dy * sp + cp], axis=-1)


def _sample_texture(tex: np.ndarray, a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Look up a tileable texture at surface coordinates (a, b) in metres, (..., 3)."""
    ia = (np.floor(a * scale * TEXTURE_SIZE).astype(np.int64)) % TEXTURE_SIZE
    ib = (np.floor(b * scale * TEXTURE_SIZE).astype(np.int64)) % TEXTURE_SIZE
    return tex[ib, ia]


def render_background(seed: int, index: int, size: int) -> Background:
    """Render room ``index`` of generator ``seed`` at SUPERSAMPLE * size pixels."""
    rng = np.random.default_rng([seed, 1, index])
    pool = texture_pool(seed)
    s = SUPERSAMPLE * size
    fov = math.radians(rng.uniform(50, 65))
    focal = (s / 2) / math.tan(fov / 2)
    height = rng.uniform(1.4, 1.8)
    pitch = math.radians(rng.uniform(8, 20))
    depth_back = rng.uniform(4.5, 7.0)
    left, right = rng.uniform(2.0, 3.5), rng.uniform(2.0, 3.5)
    ceiling = rng.uniform(2.6, 3.2)

    d = _camera_rays(s, focal, pitch)
    cam = np.array([0.0, height, 0.0], np.float32)
    inf = np.float32(np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        candidates = [
            np.where(d[..., 1] < 0, -height / d[..., 1], inf),  # 0 floor (y = 0)
            np.where(d[..., 1] > 0, (ceiling - height) / d[..., 1], inf),  # 1 ceiling
            np.where(d[..., 2] > 0, depth_back / d[..., 2], inf),  # 2 back wall (z = D)
            np.where(d[..., 0] < 0, -left / d[..., 0], inf),  # 3 left wall (x = -L)
            np.where(d[..., 0] > 0, right / d[..., 0], inf),  # 4 right wall (x = R)
        ]
    t_all = np.stack(candidates)
    t_all[t_all <= 0] = inf
    surface = np.argmin(t_all, axis=0)
    t = np.take_along_axis(t_all, surface[None], 0)[0]
    normals = np.array([[0, 1, 0], [0, -1, 0], [0, 0, -1], [1, 0, 0], [-1, 0, 0]], np.float32)
    normal = normals[surface]

    # Boxes (furniture) standing on the floor: slab intersection, keep the nearest hit.
    for _ in range(rng.integers(0, 4)):
        bw, bh, bd = rng.uniform(0.4, 1.4), rng.uniform(0.3, 1.3), rng.uniform(0.4, 1.2)
        bx = rng.uniform(-left + bw / 2, right - bw / 2)
        bz = rng.uniform(2.2, depth_back - bd / 2)
        lo = np.array([bx - bw / 2, 0.0, bz - bd / 2], np.float32)
        hi = np.array([bx + bw / 2, bh, bz + bd / 2], np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - cam) / d, (hi - cam) / d
        tnear = np.minimum(t1, t2)
        t_in, axis = tnear.max(-1), tnear.argmax(-1)
        t_out = np.maximum(t1, t2).min(-1)
        hit = (t_in <= t_out) & (t_in > 0) & (t_in < t)
        t = np.where(hit, t_in, t)
        surface = np.where(hit, 5 + axis, surface)  # 5, 6, 7: box faces by slab axis
        box_normal = np.zeros_like(d)  # the entry face faces against the ray on its slab axis
        np.put_along_axis(
            box_normal, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1
        )
        normal = np.where(hit[..., None], box_normal, normal)

    p = cam + t[..., None] * d
    # Texture: one per surface group (floor, ceiling, walls, boxes), scaled in metres.
    tex_ids = rng.integers(len(pool), size=4)
    scales = rng.uniform(0.15, 0.8, size=4)
    tints = 0.6 + 0.5 * rng.random((4, 3)).astype(np.float32)
    rgb = np.empty_like(d)
    groups = [
        (surface == 0, 0, p[..., 0], p[..., 2]),
        (surface == 1, 1, p[..., 0], p[..., 2]),
        (surface == 2, 2, p[..., 0], p[..., 1]),
        ((surface == 3) | (surface == 4), 2, p[..., 2], p[..., 1]),
        (surface == 5, 3, p[..., 2], p[..., 1]),
        (surface == 6, 3, p[..., 0], p[..., 2]),
        (surface == 7, 3, p[..., 0], p[..., 1]),
    ]
    for sel, g, a, b in groups:
        if sel.any():
            rgb[sel] = _sample_texture(pool[tex_ids[g]], a[sel], b[sel], scales[g]) * tints[g]

    # Lambert shading from a ceiling light, with distance fall-off and ambient light.
    light_pos = np.array([rng.uniform(-1, 1), ceiling - 0.2, rng.uniform(1.5, depth_back - 1)], np.float32)
    to_light = light_pos - p
    dist2 = (to_light**2).sum(-1)
    lambert = np.clip((normal * to_light).sum(-1) / np.sqrt(dist2 + 1e-6), 0, 1)
    level = rng.uniform(0.7, 1.2)
    shade = level * (0.35 + 0.9 * lambert / (1 + 0.04 * dist2))
    rgb = np.clip(rgb * shade[..., None], 0, 1).astype(np.float32)
    return Background(
        rgb=rgb,
        z=t.astype(np.float32),
        floor=surface == 0,
        focal=focal,
        height=height,
        pitch=pitch,
        light=level,
    )


def _shape_alpha(kind: str, params: np.ndarray, xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
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


def _place(bg: Background, fg: Foreground, rng: np.random.Generator) -> tuple[float, float, float]:
    """Pick where the object stands: returns (foot u, foot v, camera-space z) in pixels/metres.

    A floor pixel is chosen whose distance makes the object 30-85% of the image tall, so
    objects are large enough to segment at 64x64 but never fill the frame; within that,
    perspective decides the size.
    """
    s = bg.rgb.shape[0]
    z = bg.z
    fraction = fg.height * bg.focal / (np.maximum(z, 1e-3) * s)  # object height / image height
    ok = bg.floor & (fraction > 0.3) & (fraction < 0.85)
    v_idx, u_idx = np.nonzero(ok)
    if len(v_idx) == 0:  # no floor pixel fits: take those nearest to half the image tall
        cost = np.where(bg.floor, np.abs(fraction - 0.5), np.inf)
        v_idx, u_idx = np.nonzero(cost <= cost.min() + 0.02)
    k = rng.integers(len(v_idx))
    return float(u_idx[k]), float(v_idx[k]), float(z[v_idx[k], u_idx[k]])


def composite(bg: Background, fg: Foreground, rng: np.random.Generator, flip: bool) -> dict[str, np.ndarray]:
    """Paste ``fg`` into ``bg`` standing on the floor; returns fg_bg, mask (alpha) and depth at S x S."""
    s = bg.rgb.shape[0]
    u0, v0, z0 = _place(bg, fg, rng)
    # Project the foot and head: the head is fg.height above the foot, seen with the camera's pitch.
    sp, cp = math.sin(bg.pitch), math.cos(bg.pitch)
    # Camera-space coords of the foot, recovered from its pixel and z.
    c = (s - 1) / 2
    y_cam_foot = -(v0 - c) / bg.focal * z0
    head_y_cam = y_cam_foot + fg.height * cp
    head_z = z0 + fg.height * sp
    v_top = c - bg.focal * head_y_cam / head_z
    box_h = max(v0 - v_top, 2.0)
    box_w = max(fg.height * fg.aspect * bg.focal / z0, 2.0)

    top, bottom = int(math.floor(v_top)), int(math.ceil(v0)) + 1
    left, right = int(math.floor(u0 - box_w / 2)), int(math.ceil(u0 + box_w / 2)) + 1
    y0, y1, x0, x1 = max(top, 0), min(bottom, s), max(left, 0), min(right, s)
    vv, uu = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    xn = (uu - u0) / (box_w / 2)
    if flip:  # the seed's second copy: the cut-out mirrored
        xn = -xn
    yn = (v0 - vv) / box_h
    alpha = _shape_alpha(fg.kind, fg.params, xn, yn) & (np.abs(xn) <= 1) & (yn >= 0) & (yn <= 1)

    # Texture in the object's own metric coordinates, shaded like a rounded object.
    width_m = fg.height * fg.aspect
    tex = _sample_texture(fg.texture, (xn + 1) * width_m / 2, yn * fg.height, fg.tex_scale)
    round_ = np.sqrt(np.clip(1 - xn**2, 0, 1))
    colour = np.clip(tex * (bg.light * (0.45 + 0.65 * round_))[..., None], 0, 1)
    z_obj = z0 - fg.bulge * width_m * round_  # nearer in its middle

    fg_bg = bg.rgb.copy()
    mask = np.zeros((s, s), np.float32)
    z = bg.z.copy()
    region = (slice(y0, y1), slice(x0, x1))
    fg_bg[region][alpha] = colour[alpha]
    mask[region][alpha] = 1.0
    z[region][alpha] = np.minimum(z[region][alpha], z_obj[alpha])
    return {"fg_bg": fg_bg, "mask": mask, "z": z}


def _downsample(a: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor blocks: (S, S, ...) -> (S/f, S/f, ...)."""
    s = a.shape[0] // factor
    return a.reshape(s, factor, s, factor, *a.shape[2:]).mean(axis=(1, 3))


def depth_from_z(z: np.ndarray) -> np.ndarray:
    """Camera-space distance in metres -> depth value in [0, 1] (see DEPTH_CONVENTION)."""
    return np.clip(Z_REF / np.maximum(z, 1e-6), 0.0, 1.0).astype(np.float32)


class SyntheticScenes(Dataset):
    """The seed's recipe on generated scenes: backgrounds x foregrounds x positions x flips.

    Sample order follows the seed: all samples of one background are contiguous
    (``background_index(i)``), then foreground, position and flip.

    Each item is the sample dict: ``bg``, ``fg_bg`` (3, size, size), ``mask``, ``depth``
    (1, size, size), float32 in [0, 1].
    """

    def __init__(
        self,
        backgrounds: int = 100,
        foregrounds: int = 100,
        positions: int = 20,
        flips: bool = True,
        size: int = 64,
        seed: int = 0,
    ):
        if min(backgrounds, foregrounds, positions) < 1:
            raise ValueError("backgrounds, foregrounds and positions must each be >= 1")
        if size < 32:
            raise ValueError(f"size must be >= 32 (the W-Net pools five times), got {size}")
        self.backgrounds, self.foregrounds, self.positions = backgrounds, foregrounds, positions
        self.flips = 2 if flips else 1
        self.size, self.seed = size, seed
        self._bg_cache: dict[int, Background] = {}

    def __len__(self) -> int:
        return self.backgrounds * self.foregrounds * self.positions * self.flips

    def describe(self) -> str:
        """One line for model cards and logs."""
        return (
            f"maskdepth synthetic scenes (seed {self.seed}): {self.backgrounds} rooms x {self.foregrounds} "
            f"objects x {self.positions} positions x {self.flips} flips = {len(self)} samples at "
            f"{self.size}x{self.size}"
        )

    def background_index(self, i: int) -> int:
        """Which background sample ``i`` uses."""
        return i // (self.foregrounds * self.positions * self.flips)

    def _background(self, b: int) -> Background:
        bg = self._bg_cache.get(b)
        if bg is None:
            if len(self._bg_cache) >= 256:  # bound memory for large datasets
                self._bg_cache.pop(next(iter(self._bg_cache)))
            bg = self._bg_cache[b] = render_background(self.seed, b, self.size)
        return bg

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples")
        rest, flip = divmod(i, self.flips)
        rest, pos = divmod(rest, self.positions)
        b, f = divmod(rest, self.foregrounds)
        bg = self._background(b)
        fg = make_foreground(self.seed, f)
        rng = np.random.default_rng([self.seed, 3, b, f, pos])
        comp = composite(bg, fg, rng, flip=bool(flip))
        k = SUPERSAMPLE
        mask = (_downsample(comp["mask"], k) >= 0.5).astype(np.float32)
        # Average inverse depth (the stored quantity), not z, so edges blend like the images.
        depth = _downsample(depth_from_z(comp["z"]), k)
        return {
            "bg": torch.from_numpy(_downsample(bg.rgb, k)).permute(2, 0, 1).contiguous(),
            "fg_bg": torch.from_numpy(_downsample(comp["fg_bg"], k)).permute(2, 0, 1).contiguous(),
            "mask": torch.from_numpy(mask)[None],
            "depth": torch.from_numpy(depth)[None],
        }
