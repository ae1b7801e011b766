"""Studio shots: objects on a table before a backdrop, the set-up of most close-up object photos.

A table top (y = 0) that curves up into a vertical backdrop (a photographer's sweep, or a cloth
draped over a wall: one texture running from the table up the backdrop; in 2 in 5 scenes the table
top has its own texture, ending where the curve begins). Above the table the frame shows the
backdrop (in a few wide, flat frames only the table), so depth runs from near at the bottom to the
backdrop's distance with no far room behind; the objects standing on the table are the only depth
steps. Lit by a soft light from the front.
"""

from __future__ import annotations

import math

import numpy as np

from maskdepth.data.families.common import Canvas, pick_texture
from maskdepth.data.geometry import Background, sample_texture

CURVE, BACKDROP = -2, -3  # surface ids of the sweep's curve and its vertical part (0 = the table top)
JOIN_SLACK = 1e-5  # relative: each part reaches this far past the joins, so no ray falls between two parts


def _sweep(c: Canvas, seam: float, radius: float) -> np.ndarray:
    """Cast the sweep into ``c`` (table to z = seam, a quarter circle of ``radius``, then a wall); arc length."""
    d, (_, cy, cz) = c.d, c.cam
    dy, dz = d[..., 1], d[..., 2]
    eps = JOIN_SLACK * (seam + radius)  # the parts touch at the joins, so the overlap changes no hit
    with np.errstate(divide="ignore", invalid="ignore"):
        t_table = np.where(dy < 0, -cy / dy, np.inf)
        t_table = np.where(cz + t_table * dz <= seam + eps, t_table, np.inf)
        t_wall = (seam + radius - cz) / dz
        t_wall = np.where((dz > 0) & (cy + t_wall * dy >= radius - eps), t_wall, np.inf)
        # (y - r)^2 + (z - seam)^2 = r^2 on y <= r, seam <= z: the nearer root that lies on the quarter
        oy, oz = cy - radius, cz - seam
        a, b, k = dy**2 + dz**2, 2 * (oy * dy + oz * dz), oy**2 + oz**2 - radius**2
        root = np.sqrt(np.maximum(b * b - 4 * a * k, 0))
        t_curve = np.full_like(dy, np.inf)
        for t in ((-b - root) / (2 * a), (-b + root) / (2 * a)):
            y, z = cy + t * dy, cz + t * dz
            on = (b * b >= 4 * a * k) & (t > 0) & (y <= radius + eps) & (z >= seam - eps) & (t < t_curve)
            t_curve = np.where(on, t, t_curve)
    t = np.minimum(np.minimum(t_table, t_wall), t_curve)
    c.t = t.astype(np.float32)
    c.surface = np.where(t == t_table, 0, np.where(t == t_curve, CURVE, BACKDROP))
    p = c.points()
    normal = np.zeros_like(d)
    normal[..., 1] = np.where(c.surface == 0, 1.0, 0.0)
    normal[..., 2] = np.where(c.surface == BACKDROP, -1.0, 0.0)
    on_curve = c.surface == CURVE
    normal[on_curve, 1] = (radius - p[on_curve, 1]) / radius
    normal[on_curve, 2] = (seam - p[on_curve, 2]) / radius
    c.normal = normal
    angle = np.arctan2(p[..., 2] - seam, radius - p[..., 1])
    return np.select(
        [c.surface == 0, on_curve],
        [p[..., 2], seam + radius * angle],
        seam + radius * math.pi / 2 + p[..., 1] - radius,
    ).astype(np.float32)


def render_studio(seed: int, index: int, size: tuple[int, int]) -> Background:
    """Camera 0.4-1.1 m above a table, looking down 8-28 degrees at a backdrop 1.6-3.6 m away (or farther:
    the table always fills the bottom 30% of the frame)."""
    # racks' stream id too: a background index belongs to one family or the other, never both
    rng = np.random.default_rng([seed, 16, index])
    c = Canvas(size, rng.uniform(38, 60), rng.uniform(0.4, 1.1), rng.uniform(8, 28))
    seam, radius = rng.uniform(1.6, 3.0), rng.uniform(0.03, 0.6)
    # The table fills at least the bottom 30% of the frame: the seam lies beyond where that row meets it.
    below = c.pitch + math.atan(0.2 * c.d.shape[0] / c.focal)
    seam = max(seam, c.height / math.tan(below) + 0.2)
    arc = _sweep(c, seam, radius)
    p = c.points()
    rgb = np.zeros_like(c.d)
    cloth = pick_texture(seed, rng, 0.6)
    scale, tint = rng.uniform(0.4, 2.5), 0.55 + 0.5 * rng.random(3)
    table = c.surface == 0
    rgb[...] = sample_texture(cloth, p[..., 0], arc, scale) * tint
    if rng.random() < 0.4:  # a separate table top meeting the backdrop
        top, top_scale = pick_texture(seed, rng, 0.4), rng.uniform(0.5, 3.0)
        rgb[table] = sample_texture(top, p[table][:, 0], p[table][:, 2], top_scale) * (
            0.5 + 0.6 * rng.random(3)
        )
    for _ in range(rng.integers(0, 4)):  # books, boxes and jars on the table
        bw, bh, bd = rng.uniform(0.05, 0.3, 3)
        x, z = rng.uniform(-0.8, 0.8), rng.uniform(1.0, seam - bd)
        c.add_box(
            [x, 0, z],
            [x + bw, bh, z + bd],
            pick_texture(seed, rng, 0.3),
            rng.uniform(1, 4),
            0.5 + 0.6 * rng.random(3),
        )
    p = c.points()  # the boxes now hide parts of the sweep
    c.paint_boxes(rgb, p)
    light = np.array([rng.uniform(-1.5, 1.5), rng.uniform(1.0, 2.5), rng.uniform(-0.5, 1.0)], np.float32)
    level = rng.uniform(0.8, 1.2)
    rgb = np.clip(rgb * (level * c.lamp(p, light, 0.5, 0.6, 0.03))[..., None], 0, 1)
    return c.background(rgb, c.surface == 0, level)
