"""Tabletop close-ups: a near table top (objects stand on it) ending at an edge, the room beyond and below.

The table top's near edge is close to the camera (depth near 1); past its far edge the view
drops to the floor and back wall of the room, a depth step behind everything on the table.
"""

from __future__ import annotations

import numpy as np

from maskdepth.data.families.common import Canvas, pick_texture
from maskdepth.data.geometry import Background


def render_tabletop(seed: int, index: int, size: tuple[int, int]) -> Background:
    """Table top at y = 0 (the standing surface), camera 0.6-1 m above it looking down 15-28 degrees."""
    rng = np.random.default_rng([seed, 14, index])
    c = Canvas(size, rng.uniform(45, 62), rng.uniform(0.6, 1.0), rng.uniform(15, 28))
    table_h, edge = rng.uniform(0.7, 0.78), rng.uniform(2.2, 3.5)  # table height above the floor, far edge
    left, right, back = rng.uniform(1.5, 3), rng.uniform(1.5, 3), edge + rng.uniform(0.8, 3)
    # The room around the table: its floor is the Canvas ground lowered to -table_h, so cast it as a box.
    c.t[:] = np.inf
    c.surface[:] = -1
    room = [  # (lo, hi) slabs: floor, back wall, left and right walls, ceiling
        ([-left, -table_h - 0.1, -1], [right, -table_h, back]),
        ([-left, -table_h, back], [right, 3, back + 0.1]),
        ([-left - 0.1, -table_h, -1], [-left, 3, back]),
        ([right, -table_h, -1], [right + 0.1, 3, back]),
        ([-left, 2.4 - table_h, -1], [right, 2.5 - table_h, back]),
    ]
    for lo, hi in room:
        c.add_box(lo, hi, pick_texture(seed, rng, 0.4), rng.uniform(0.2, 0.8), (0.5 + 0.5 * rng.random(3)))
    wide = rng.uniform(0.6, 1.2)
    c.add_box(
        [-wide * 1.5, -0.04, -1],
        [wide * 1.5, 0.0, edge],
        pick_texture(seed, rng, 0.5),
        rng.uniform(0.3, 1.5),
        (0.6 + 0.5 * rng.random(3)),
    )
    table = len(c.boxes) - 1
    for _ in range(rng.integers(0, 4)):  # books, boxes and jars on the table
        bw, bh, bd = rng.uniform(0.06, 0.3, 3)
        x, z = rng.uniform(-wide, wide), rng.uniform(0.9, edge - bd)
        c.add_box(
            [x, 0, z],
            [x + bw, bh, z + bd],
            pick_texture(seed, rng, 0.3),
            rng.uniform(1, 4),
            (0.5 + 0.6 * rng.random(3)),
        )
    p = c.points()
    rgb = np.zeros_like(c.d)
    c.paint_boxes(rgb, p)
    light = np.array([rng.uniform(-1, 1), rng.uniform(1.2, 1.6), rng.uniform(0.5, edge)], np.float32)
    level = rng.uniform(0.75, 1.2)
    rgb = np.clip(rgb * (level * c.lamp(p, light, 0.35, 0.8, 0.1))[..., None], 0, 1)
    return c.background(rgb, c.surface == 1 + 3 * table + 1, level)  # objects stand on the table's top face
