"""Rooms (the shipped generator's scenes), corridors, wall scenes and racks: a closed box seen from inside.

Floor, back wall, side walls and ceiling, a few boxes (furniture) standing on the floor, each
surface textured in perspective and lit by a point light. A corridor is the same geometry,
narrow and long, with a weaker light fall-off. A wall scene is how most indoor photos are
framed: the camera faces the back wall from 1.5-4.5 m, so the wall (with shelves, cabinets and
flat pictures on it) fills the top of the frame and the floor the bottom, with furniture in
front; the ceiling and the room's far corners are rarely in view. A rack scene is a wall scene
of storage: shelving racks against the wall, every shelf loaded with boxes of their own textures
(the busy, high-contrast clutter of a garage or a pantry, as far away as the wall it stands on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from maskdepth.data.families.common import FACE_AXES, paint_faces, pick_texture
from maskdepth.data.geometry import SUPERSAMPLE, Background, camera_rays, hit_box, sample_texture
from maskdepth.data.textures import texture_pool


@dataclass(frozen=True)
class RoomStyle:
    """Ranges (lo, hi) of a room's random layout, in metres / degrees."""

    fov: tuple[float, float] = (50, 65)
    height: tuple[float, float] = (1.4, 1.8)
    pitch: tuple[float, float] = (8, 20)
    depth: tuple[float, float] = (4.5, 7.0)
    half_width: tuple[float, float] = (2.0, 3.5)
    ceiling: tuple[float, float] = (2.6, 3.2)
    max_boxes: int = 3
    box_near: float = 2.2  # metres: the nearest a box's (furniture's) centre stands, room depth permitting
    shelves: int = 0  # 1..this many shelves / cabinets on the back wall, 0-2 flat pictures (0: neither)
    min_floor: float = 0.0  # tilt down at least enough that the floor fills this share of the frame's height
    racks: int = 0  # 1..this many shelving racks loaded with boxes, and 0-2 pictures each of its own photo
    clear_boxes: bool = False  # box_near bounds a box's front face (False: its centre, as rooms drew it)
    falloff: float = 0.04  # light fall-off per square metre
    stream: int = 1  # random-stream id: each style draws its own scenes


ROOM = RoomStyle()
CORRIDOR = RoomStyle(
    fov=(55, 70),
    pitch=(3, 12),
    depth=(14, 35),
    half_width=(0.9, 1.7),
    ceiling=(2.4, 3.0),
    falloff=0.004,
    stream=11,
)
WALL = RoomStyle(
    fov=(45, 65),
    height=(1.0, 1.7),
    pitch=(0, 18),  # raised by min_floor when the wall is near (up to about 40 degrees at 1.5 m)
    depth=(1.5, 4.5),
    half_width=(2.0, 4.5),
    ceiling=(3.0, 4.0),  # the ceiling mostly out of view, as in most photos of a wall
    max_boxes=2,  # more furniture near the camera would often hide the whole floor
    box_near=1.3,
    shelves=4,
    min_floor=0.2,  # objects stand on the floor: a wall 1.5 m away with a level camera hides it
    stream=15,
)
# Facing storage: shelving racks against the wall, each shelf loaded with boxes and objects of their own
# textures (a garage, a pantry, a bookcase, a shop). Clutter high in the frame that is as far as the wall.
RACKS = RoomStyle(
    fov=WALL.fov,
    height=WALL.height,
    pitch=WALL.pitch,
    depth=(1.8, 5.0),
    half_width=WALL.half_width,
    ceiling=WALL.ceiling,
    max_boxes=2,
    box_near=1.2,
    racks=3,
    clear_boxes=True,
    min_floor=0.25,
    stream=16,
)


def render_background(
    seed: int, index: int, size: int | tuple[int, int], style: RoomStyle = ROOM
) -> Background:
    """Render room ``index`` of generator ``seed`` at SUPERSAMPLE * size pixels (size: side or (H, W))."""
    rng = np.random.default_rng([seed, style.stream, index])
    pool = texture_pool(seed)
    h, w = (size, size) if isinstance(size, int) else size
    h, w = SUPERSAMPLE * h, SUPERSAMPLE * w
    fov = math.radians(rng.uniform(*style.fov))
    focal = (w / 2) / math.tan(fov / 2)
    height = rng.uniform(*style.height)
    pitch = math.radians(rng.uniform(*style.pitch))
    depth_back = rng.uniform(*style.depth)
    left, right = rng.uniform(*style.half_width), rng.uniform(*style.half_width)
    ceiling = rng.uniform(*style.ceiling)
    if style.min_floor:  # the floor meets the back wall at atan(height / depth_back) below the horizon
        pitch = max(pitch, math.atan(height / depth_back) - math.atan((0.5 - style.min_floor) * h / focal))

    d = camera_rays(h, w, focal, pitch)
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
    for _ in range(rng.integers(0, style.max_boxes + 1)):
        bw, bh, bd = rng.uniform(0.4, 1.4), rng.uniform(0.3, 1.3), rng.uniform(0.4, 1.2)
        bx = rng.uniform(-left + bw / 2, right - bw / 2)
        near = style.box_near + bd / 2 if style.clear_boxes else style.box_near
        bz = rng.uniform(min(near, depth_back - bd / 2), depth_back - bd / 2)
        lo = np.array([bx - bw / 2, 0.0, bz - bd / 2], np.float32)
        hi = np.array([bx + bw / 2, bh, bz + bd / 2], np.float32)
        t, surface, normal = hit_box(d, cam, lo, hi, t, surface, normal, 5)  # 5, 6, 7: faces by axis

    p = cam + t[..., None] * d
    # Texture: one per surface group (floor, ceiling, walls, boxes), scaled in metres.
    tex_ids = rng.integers(len(pool), size=4)
    scales = rng.uniform(0.15, 0.8, size=4)
    tints = 0.6 + 0.5 * rng.random((4, 3)).astype(np.float32)
    rgb = np.empty_like(d)
    if style.shelves:  # drawn after everything the other styles draw, so their scenes are unchanged
        t, surface, normal, p = _wall_fittings(
            rng, d, cam, (left, right, depth_back), style.shelves, t, surface, normal
        )
        _paint_fittings(rng, seed, rgb, surface, p)
    if style.racks:
        t, surface, normal, p = _racks(
            rng, seed, d, cam, (left, right, depth_back), style.racks, t, surface, normal, rgb
        )
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
            rgb[sel] = sample_texture(pool[tex_ids[g]], a[sel], b[sel], scales[g]) * tints[g]

    # Lambert shading from a ceiling light, with distance fall-off and ambient light.
    light_x = rng.uniform(-1, 1)
    # The light at least 1.5 m in, as in rooms and corridors (>= 4.5 m deep); nearer in wall scenes.
    light_lo = min(1.5, 0.4 * depth_back)
    light_z = rng.uniform(light_lo, max(depth_back - 1, light_lo + 0.3))
    light_pos = np.array([light_x, ceiling - 0.2, light_z], np.float32)
    to_light = light_pos - p
    dist2 = (to_light**2).sum(-1)
    lambert = np.clip((normal * to_light).sum(-1) / np.sqrt(dist2 + 1e-6), 0, 1)
    level = rng.uniform(0.7, 1.2)
    shade = level * (0.35 + 0.9 * lambert / (1 + style.falloff * dist2))
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


def _wall_fittings(rng, d, cam, room, shelves: int, t, surface, normal):
    """1..``shelves`` shelves and cabinets (surfaces 8-10) and 0-2 flat pictures (11-13) on the back wall."""
    left, right, back = room
    for _ in range(rng.integers(1, shelves + 1)):
        fw, fh, fd = rng.uniform(0.5, 2.0), rng.uniform(0.04, 0.9), rng.uniform(0.2, 0.45)
        fx, fy = rng.uniform(-left, right - fw), rng.uniform(0.5, 2.0)
        lo = np.array([fx, fy, back - fd], np.float32)
        t, surface, normal = hit_box(d, cam, lo, lo + np.float32([fw, fh, fd]), t, surface, normal, 8)
    for _ in range(rng.integers(0, 3)):
        pw, ph = rng.uniform(0.3, 1.2), rng.uniform(0.3, 0.9)
        px, py = rng.uniform(-left, right - pw), rng.uniform(0.9, 2.2)
        lo = np.array([px, py, back - 0.02], np.float32)
        t, surface, normal = hit_box(d, cam, lo, lo + np.float32([pw, ph, 0.02]), t, surface, normal, 11)
    return t, surface, normal, cam + t[..., None] * d


def _paint_fittings(rng, seed: int, rgb: np.ndarray, surface: np.ndarray, p: np.ndarray) -> None:
    """Texture the wall fittings: the shelves in one pattern, the pictures in one photo (when available).

    The photo is laid on the wall in metres like every texture here, so a picture shows some crop of it.
    """
    shelf, picture = pick_texture(seed, rng, 0.3), pick_texture(seed, rng, 1.0)
    shelf_scale, tint = rng.uniform(0.3, 1.5), 0.6 + 0.5 * rng.random(3).astype(np.float32)
    faces = [
        (surface == 8 + axis, shelf, p[..., a], p[..., b], shelf_scale)
        for axis, (a, b) in enumerate(FACE_AXES)
    ]
    for sel, tex, a, b, scale in (
        *faces,
        ((surface >= 11) & (surface <= 13), picture, p[..., 0], p[..., 1], rng.uniform(0.8, 1.6)),
    ):
        if sel.any():
            rgb[sel] = sample_texture(tex, a[sel], b[sel], scale) * tint


RACK_FIRST = 20  # surface ids of rack parts: 20 + 3 k + axis for part k (boards, posts, loaded items)


def _racks(rng, seed: int, d, cam, room, racks: int, t, surface, normal, rgb):
    """1..``racks`` shelving racks on the back wall, loaded with boxes, and 0-2 pictures; painted into ``rgb``.

    Every rack part and item has its own texture (photos half the time) and tint, so the clutter is as
    varied as a real shelf; each picture shows a photo of its own. Surfaces from RACK_FIRST on.
    """
    left, right, back = room
    parts = []  # (lo, hi, texture, scale, tint)

    def part(lo, hi, photo: float) -> None:
        tint = 0.6 + 0.5 * rng.random(3).astype(np.float32)
        parts.append(
            (np.float32(lo), np.float32(hi), pick_texture(seed, rng, photo), rng.uniform(0.2, 1.2), tint)
        )

    spans = []  # (first, last) part index of each rack and picture
    for _ in range(rng.integers(1, racks + 1)):
        start = len(parts)
        rw, rd = rng.uniform(0.8, 2.2), rng.uniform(0.3, 0.6)
        rx = rng.uniform(-left, max(-left, right - rw))
        boards, gap, y = rng.integers(2, 6), rng.uniform(0.3, 0.55), rng.uniform(0.05, 0.5)
        frame = (
            pick_texture(seed, rng, 0.2),
            rng.uniform(0.3, 1.0),
            0.6 + 0.5 * rng.random(3).astype(np.float32),
        )
        top = y + (boards - 1) * gap + 0.03
        for x0 in (rx, rx + rw - 0.04):  # the two uprights
            parts.append(
                (np.float32([x0, 0, back - rd]), np.float32([x0 + 0.04, top, back - rd + 0.04]), *frame)
            )
        for k in range(boards):
            by = y + k * gap
            parts.append((np.float32([rx, by, back - rd]), np.float32([rx + rw, by + 0.03, back]), *frame))
            x = rx + 0.04 + rng.uniform(0, 0.15)
            while k < boards - 1 or rng.random() < 0.5:  # items on every board, half the time one on the top
                iw, ih = rng.uniform(0.08, 0.45), rng.uniform(0.06, min(gap - 0.04, 0.45))
                if x + iw > rx + rw - 0.04:
                    break
                idp = rng.uniform(0.1, rd - 0.02)
                z0 = back - rd + rng.uniform(0, rd - idp)
                part([x, by + 0.03, z0], [x + iw, by + 0.03 + ih, z0 + idp], 0.5)
                x += iw + rng.uniform(0.0, 0.2)
                if k == boards - 1:
                    break
        spans.append((start, len(parts)))
    for _ in range(rng.integers(0, 3)):
        pw, ph = rng.uniform(0.3, 1.2), rng.uniform(0.3, 0.9)
        px, py = rng.uniform(-left, right - pw), rng.uniform(0.9, 2.2)
        part([px, py, back - 0.02], [px + pw, py + ph, back], 1.0)
        spans.append((len(parts) - 1, len(parts)))
    # Each part is ray-cast only against the rays that meet its rack's (or picture's) bounding box.
    for first, last in spans:
        lo = np.min([q[0] for q in parts[first:last]], axis=0)
        hi = np.max([q[1] for q in parts[first:last]], axis=0)
        near = np.full(t.shape, np.inf, np.float32)
        sel = np.isfinite(hit_box(d, cam, lo, hi, near, surface, normal, 0)[0])
        ts, ss, ns = t[sel], surface[sel], normal[sel]
        for k in range(first, last):
            ts, ss, ns = hit_box(d[sel], cam, parts[k][0], parts[k][1], ts, ss, ns, RACK_FIRST + 3 * k)
        t[sel], surface[sel], normal[sel] = ts, ss, ns
    p = cam + t[..., None] * d
    paint_faces(rgb, surface, p, [q[2:] for q in parts], RACK_FIRST)
    return t, surface, normal, p


def render_racks(seed: int, index: int, size: int | tuple[int, int]) -> Background:
    """Facing shelving racks loaded with boxes against a room's back wall (RACKS' ranges)."""
    return render_background(seed, index, size, RACKS)


def render_wall(seed: int, index: int, size: int | tuple[int, int]) -> Background:
    """Facing the back wall of a room (the room geometry with WALL's ranges, shelves and pictures)."""
    return render_background(seed, index, size, WALL)


def render_corridor(seed: int, index: int, size: int | tuple[int, int]) -> Background:
    """A long narrow corridor (the room geometry with CORRIDOR's ranges)."""
    return render_background(seed, index, size, CORRIDOR)
