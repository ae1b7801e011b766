"""Building blocks of the open scene families: sky, sun light, textured boxes, photo textures."""

from __future__ import annotations

import math

import numpy as np

from maskdepth.data.geometry import SUPERSAMPLE, Background, camera_rays, hit_box, sample_texture
from maskdepth.data.textures import fbm, photo_indices, texture_pool

# Surface-coordinate axes (a, b) of a box face by its slab axis: x-faces use (z, y), tops (x, z), z-faces (x, y).
FACE_AXES = ((2, 1), (0, 2), (0, 1))


class Canvas:
    """A scene being ray-cast at SUPERSAMPLE x (H, W): nearest hit ``t``, its surface id and normal.

    Surface ids: -1 sky (nothing hit), 0 the ground (y = 0) and 1 + 3 k + axis the faces of box k.
    """

    def __init__(
        self, size: tuple[int, int], fov_deg: float, height: float, pitch_deg: float, x: float = 0.0
    ):
        h, w = SUPERSAMPLE * size[0], SUPERSAMPLE * size[1]
        self.focal = (w / 2) / math.tan(math.radians(fov_deg) / 2)
        self.pitch, self.height = math.radians(pitch_deg), height
        self.d = camera_rays(h, w, self.focal, self.pitch)
        self.cam = np.array([x, height, 0.0], np.float32)
        with np.errstate(divide="ignore"):
            self.t = np.where(self.d[..., 1] < 0, -height / self.d[..., 1], np.float32(np.inf))
        self.surface = np.where(np.isfinite(self.t), 0, -1)
        self.normal = np.zeros_like(self.d)
        self.normal[..., 1] = 1.0
        self.boxes: list[tuple[np.ndarray, float, np.ndarray]] = []  # (texture, scale, tint) per box

    def add_box(self, lo, hi, texture: np.ndarray, scale: float, tint: np.ndarray) -> None:
        """An axis-aligned box between corners lo and hi (metres), textured in metres."""
        first = 1 + 3 * len(self.boxes)
        lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
        self.t, self.surface, self.normal = hit_box(
            self.d, self.cam, lo, hi, self.t, self.surface, self.normal, first
        )
        self.boxes.append((texture, scale, tint))

    def points(self) -> np.ndarray:
        """World coordinates of every hit, (H, W, 3) (non-finite where the sky is seen)."""
        with np.errstate(invalid="ignore"):
            return self.cam + self.t[..., None] * self.d

    def paint_boxes(self, rgb: np.ndarray, p: np.ndarray) -> None:
        """Texture every visible box face in place."""
        paint_faces(rgb, self.surface, p, self.boxes, 1)

    def lamp(
        self, p: np.ndarray, light: np.ndarray, ambient: float, gain: float, falloff: float
    ) -> np.ndarray:
        """Shade (H, W) of a point lamp at ``light``: ambient + gain * Lambert / (1 + falloff * distance^2)."""
        to_light = light - p
        dist2 = (to_light**2).sum(-1)
        lambert = np.clip((self.normal * to_light).sum(-1) / np.sqrt(dist2 + 1e-6), 0, 1)
        return ambient + gain * lambert / (1 + falloff * dist2)

    def background(self, rgb: np.ndarray, floor: np.ndarray, light: float, **haze) -> Background:
        """The rendered scene: ``rgb`` clipped to [0, 1], this canvas's distances and camera."""
        return Background(
            rgb=np.clip(rgb, 0, 1).astype(np.float32),
            z=self.t.astype(np.float32),
            floor=floor,
            focal=self.focal,
            height=self.height,
            pitch=self.pitch,
            light=light,
            **haze,
        )


def paint_faces(rgb: np.ndarray, surface: np.ndarray, p: np.ndarray, boxes, first_id: int) -> None:
    """Texture the visible faces of ``boxes`` [(texture, scale, tint)], box k's surfaces first_id + 3 k + axis."""
    for k, (tex, scale, tint) in enumerate(boxes):
        for axis, (a, b) in enumerate(FACE_AXES):
            sel = surface == first_id + 3 * k + axis
            if sel.any():
                rgb[sel] = sample_texture(tex, p[sel][:, a], p[sel][:, b], scale) * tint


def pick_texture(seed: int, rng: np.random.Generator, photo: float) -> np.ndarray:
    """A pool texture; a photo crop with probability ``photo`` (when scikit-image is installed)."""
    pool, photos = texture_pool(seed), photo_indices(seed)
    if len(photos) and rng.random() < photo:
        return pool[photos[rng.integers(len(photos))]]
    return pool[rng.integers(len(pool))]


def sky(d: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A sky seen along rays ``d``: a horizon-to-zenith gradient with fBm clouds.

    Returns (rgb (H, W, 3), horizon colour (3,)); the horizon colour doubles as the haze colour.
    """
    horizon = np.array([0.78, 0.82, 0.86], np.float32) * rng.uniform(0.85, 1.1) + rng.uniform(-0.05, 0.05, 3)
    zenith = np.array([0.3, 0.5, 0.85], np.float32) * rng.uniform(0.7, 1.1)
    elevation = d[..., 1] / np.linalg.norm(d, axis=-1)
    e = np.sqrt(np.clip(elevation, 0, 1))[..., None]
    rgb = horizon * (1 - e) + zenith * e
    clouds = fbm(rng, 64)  # projected onto a cloud layer; far clouds crowd towards the horizon
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = d[..., 0] / np.maximum(d[..., 1], 1e-3), d[..., 2] / np.maximum(d[..., 1], 1e-3)
    scale = rng.uniform(0.05, 0.2)
    ia = np.floor(a * scale * 64).astype(np.int64) % 64
    ib = np.floor(b * scale * 64).astype(np.int64) % 64
    cover = np.clip((clouds[ib, ia] - rng.uniform(0.35, 0.6)) * 3, 0, 1)[..., None] * np.clip(e * 3, 0, 1)
    rgb = rgb * (1 - cover) + np.float32(0.95) * cover
    return np.clip(rgb, 0, 1).astype(np.float32), np.clip(horizon, 0, 1)


def sun_shade(normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Lambert shading under a sun at 20-65 degrees elevation plus sky light; returns (shade, level)."""
    elev, azim = math.radians(rng.uniform(20, 65)), rng.uniform(0, 2 * math.pi)
    sun = np.array(
        [math.cos(elev) * math.sin(azim), math.sin(elev), math.cos(elev) * math.cos(azim)], np.float32
    )
    level = rng.uniform(0.75, 1.15)
    return level * (0.45 + 0.65 * np.clip(normal @ sun, 0, 1)), level
