"""Open scenes under a sky: an outdoor ground plane with scattered blocks, and a street between buildings.

Rays that hit nothing see the sky, at infinite distance: depth 0 there. Both are hazed by
aerial perspective (far surfaces fade towards the horizon colour).
"""

from __future__ import annotations

import numpy as np

from maskdepth.data.families.common import Canvas, pick_texture, sky, sun_shade
from maskdepth.data.geometry import Background, apply_haze, sample_texture


def _finish(c: Canvas, seed: int, rng, ground: list, haze_range: tuple[float, float]) -> Background:
    """Paint the ground (list of (selector on world points, texture, scale, tint)), boxes and sky; shade; haze."""
    p = c.points()
    rgb = np.zeros_like(c.d)
    for select, tex, scale, tint in ground:
        sel = (c.surface == 0) & select(p)
        if sel.any():
            rgb[sel] = sample_texture(tex, p[sel][:, 0], p[sel][:, 2], scale) * tint
    c.paint_boxes(rgb, p)
    shade, level = sun_shade(c.normal, rng)
    rgb = rgb * shade[..., None]
    sky_rgb, horizon = sky(c.d, rng)
    is_sky = c.surface < 0
    rgb[is_sky] = sky_rgb[is_sky]
    distance = rng.uniform(*haze_range)
    rgb = apply_haze(np.clip(rgb, 0, 1), c.t, horizon, distance)
    return c.background(
        rgb, c.surface == 0, level, haze=tuple(float(v) for v in horizon), haze_distance=distance
    )


def _tint(rng) -> np.ndarray:
    return (0.6 + 0.5 * rng.random(3)).astype(np.float32)


def render_outdoor(seed: int, index: int, size: tuple[int, int]) -> Background:
    """Open ground to the horizon (grass, gravel, paving in perspective), blocks and rocks, sky and haze."""
    rng = np.random.default_rng([seed, 12, index])
    c = Canvas(size, rng.uniform(50, 70), rng.uniform(1.3, 2.0), rng.uniform(3, 14))
    for _ in range(rng.integers(1, 7)):  # blocks, walls and rocks at 4-80 m, bigger when further
        z = float(np.exp(rng.uniform(np.log(4), np.log(80))))
        bw, bh, bd = (rng.uniform(0.3, 1.2, 3) * [z / 3, z / 6, z / 4]).clip(0.3, 40)
        x = rng.uniform(-0.8, 0.8) * z
        tex = pick_texture(seed, rng, photo=0.5)
        c.add_box([x - bw / 2, 0, z], [x + bw / 2, bh, z + bd], tex, rng.uniform(0.1, 0.6), _tint(rng))
    ground = [
        (
            lambda p: np.ones(p.shape[:-1], bool),
            pick_texture(seed, rng, 0.7),
            rng.uniform(0.1, 0.5),
            _tint(rng),
        )
    ]
    return _finish(c, seed, rng, ground, (40, 250))


def render_street(seed: int, index: int, size: tuple[int, int]) -> Background:
    """A street: road and pavements between rows of buildings of varied heights, parked cars, sky above."""
    rng = np.random.default_rng([seed, 13, index])
    road = rng.uniform(3, 7)  # half-width of the road
    pavement = road + rng.uniform(1.5, 4)
    c = Canvas(
        size, rng.uniform(55, 75), rng.uniform(1.4, 1.9), rng.uniform(2, 12), x=rng.uniform(-road, road) * 0.6
    )
    for side in (-1, 1):
        z = rng.uniform(-4, 2)
        while z < 160:  # one row of buildings per side, each with its own front, height and facade
            length = rng.uniform(6, 22)
            front = pavement + rng.uniform(0, 1.5)
            x0, x1 = sorted((side * front, side * (front + 12)))
            tex = pick_texture(seed, rng, photo=0.4)
            c.add_box(
                [x0, 0, z], [x1, rng.uniform(4, 28), z + length], tex, rng.uniform(0.05, 0.3), _tint(rng)
            )
            z += length + rng.uniform(0, 4)
    for _ in range(rng.integers(0, 4)):  # parked cars
        x = rng.choice([-1, 1]) * (road - 1.2)
        z = rng.uniform(5, 60)
        tex = pick_texture(seed, rng, photo=0.0)
        c.add_box([x - 0.9, 0, z], [x + 0.9, rng.uniform(1.3, 1.7), z + 4.2], tex, 0.5, _tint(rng))
    ground = [
        (
            lambda p: np.abs(p[..., 0]) <= road,
            pick_texture(seed, rng, 0.3),
            rng.uniform(0.1, 0.4),
            _tint(rng) * 0.7,
        ),
        (lambda p: np.abs(p[..., 0]) > road, pick_texture(seed, rng, 0.5), rng.uniform(0.2, 0.8), _tint(rng)),
    ]
    return _finish(c, seed, rng, ground, (60, 300))
