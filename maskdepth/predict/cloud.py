"""Depth to 3D, in one place: a prediction back-projected into a coloured point cloud, and its PLY file.

The depth map is inverse depth (``DEPTH_CONVENTION``: value = clip(Z_REF / z, 0, 1)), so a pixel's
distance along the view is z = Z_REF / value metres. A pinhole camera at the origin with the photo's
centre as principal point and a horizontal field of view ``fov_deg`` turns pixel (u, v) at distance z
into x = (u - cu) / f * z (right), y = -(v - cv) / f * z (up) and z (along the view), the camera-space
rays :func:`maskdepth.data.geometry.camera_rays` casts for the training scenes (their fields of view
are drawn from 45..75 degrees by scene family; a photo's own is unknown, so :data:`DEFAULT_FOV_DEG`).
The frame is left-handed; :func:`write_ply` stores z negated for right-handed viewers, and
:func:`read_ply` reads such a file back. The field of view changes only the focal length, so a cloud
is seen through another one without its depth map (:func:`with_fov`), as the app's 3D view does.

Three kinds of pixels are left out:

- the sky: depth below :data:`SKY_DEPTH`, farther than :data:`MAX_DISTANCE` (depth 0 is infinitely far);
- curtains: the network's depth is smooth across an object's outline, so the pixels there sit at
  distances between the object and what is behind it and would hang in the air as a sheet. A pixel is
  dropped when the distances within :data:`EDGE_RADIUS` working-size pixels of it (the width of that
  ramp) span more than :data:`JUMP_RATIO`; the sky counts as :data:`MAX_DISTANCE` there;
- whatever exceeds ``max_points``: the photo is cut into a regular grid of at most that many cells
  (deterministic), each giving the depth at its centre and its mean colour.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from maskdepth.data.geometry import Z_REF
from maskdepth.errors import InputError
from maskdepth.fileio import atomic_write
from maskdepth.imageio import ImageSource, open_image
from maskdepth.predict.outputs import colorize_depth
from maskdepth.predict.predictor import Prediction

DEFAULT_FOV_DEG = 55.0
SCENE_PLY = "scene.ply"  # the file a prediction's cloud is written to, beside mask.png and depth.png
MAX_POINTS = 200_000  # a few MB of PLY; a browser viewer stays fluid
MAX_DISTANCE = 50.0  # metres: farther is sky (depth < 0.02, where one 8-bit step of depth is > 10 m)
SKY_DEPTH = Z_REF / MAX_DISTANCE  # depth value 0.02
# A pixel is a curtain when the farthest / nearest distance within EDGE_RADIUS working-size pixels of it
# exceeds JUMP_RATIO. Looked at from above, on synthetic scenes predicted by the shipped model: a radius of
# 2 leaves the object's rim trailing towards the wall behind it, and a ratio of 1.2 (or 1.1 at radius 3)
# starts cutting holes in slanted walls and floors.
JUMP_RATIO = 1.25
EDGE_RADIUS = 3.0
OBJECT_THRESHOLD = 0.5  # mask probability from which a point belongs to the object
OBJECT_TINT = (255, 40, 80)  # the colour the app overlays on the mask (predictor.mask_overlay)
TINT_ALPHA = 0.5


@dataclass(frozen=True)
class Cloud:
    """A coloured point cloud in metres, camera at the origin: x right, y up, z along the view (> 0)."""

    points: np.ndarray  # (N, 3) float32
    colors: np.ndarray  # (N, 3) uint8 RGB, from the composite
    is_object: np.ndarray  # (N,) bool: the pasted object's points (mask >= OBJECT_THRESHOLD)

    def __len__(self) -> int:
        return len(self.points)


def point_cloud(
    source: Prediction | np.ndarray,
    mask: np.ndarray | None = None,
    image: ImageSource | None = None,
    *,
    fov_deg: float = DEFAULT_FOV_DEG,
    max_points: int = MAX_POINTS,
    object_only: bool = False,
    edge_radius: float | None = None,
    jump_ratio: float = JUMP_RATIO,
) -> Cloud:
    """Back-project a depth map (see the module docstring) into a :class:`Cloud` of at most ``max_points``.

    Args:
        source: a :class:`~maskdepth.predict.predictor.Prediction` (its ``depth``, ``mask`` and
            ``image``), or the depth map itself: (H, W) floats in [0, 1], near = 1 (NaN = unknown, left out).
        mask: with a depth map: the object's (H, W) probability (None: no point is the object's).
        image: with a depth map: the composite, any image :func:`maskdepth.imageio.open_image` reads,
            H x W (None: the points take the depth's turbo colours).
        fov_deg: the camera's horizontal field of view in degrees.
        max_points: the most points kept (the grid's cells grow until it fits).
        object_only: keep the object's points alone.
        edge_radius: photo pixels over which depth edges are smoothed (default: :data:`EDGE_RADIUS`
            working-size pixels, scaled by the photo's size over a Prediction's working size).
        jump_ratio: see :data:`JUMP_RATIO`.
    """
    depth, mask, image, scale = _inputs(source, mask, image)
    check_fov(fov_deg)
    if max_points < 1 or jump_ratio <= 1:
        raise InputError(f"max_points must be >= 1 and jump_ratio > 1, got {max_points} and {jump_ratio}")
    h, w = depth.shape
    gh, gw = grid_shape(h, w, max_points)
    rows, cols = _centres(h, gh), _centres(w, gw)

    d = depth[np.ix_(rows, cols)]  # (gh, gw)
    valid = np.isfinite(d) & (d > SKY_DEPTH)
    z = Z_REF / np.where(valid, d, 1.0)
    radius = (EDGE_RADIUS * scale if edge_radius is None else edge_radius) * max(gh / h, gw / w)
    keep = valid & ~depth_jumps(z, valid, max(1, math.ceil(radius)), jump_ratio)
    is_object = mask[np.ix_(rows, cols)] >= OBJECT_THRESHOLD if mask is not None else np.zeros_like(keep)
    if object_only:
        keep &= is_object

    f = (w / 2) / math.tan(math.radians(fov_deg) / 2)  # focal length in pixels
    x = (cols[None, :] - (w - 1) / 2) / f * z
    y = -(rows[:, None] - (h - 1) / 2) / f * z
    if image is None:
        colors = colorize_depth(np.nan_to_num(d))
    else:
        colors = np.asarray(image if gh == h and gw == w else image.resize((gw, gh), Image.BOX))
    return Cloud(
        points=np.stack([x[keep], y[keep], z[keep]], axis=-1).astype(np.float32),
        colors=np.ascontiguousarray(colors[keep], dtype=np.uint8),
        is_object=is_object[keep],
    )


def check_fov(fov_deg: float) -> float:
    """``fov_deg`` if it is a horizontal field of view a pinhole camera can have, else InputError."""
    if not 1 <= fov_deg < 180:
        raise InputError(
            f"the field of view must be between 1 and 180 degrees, got {fov_deg:g}: phone cameras see about "
            f"65..75 degrees across the long side (the default, {DEFAULT_FOV_DEG:g}, is a guess)"
        )
    return fov_deg


def with_fov(cloud: Cloud, fov_deg: float, from_fov_deg: float = DEFAULT_FOV_DEG) -> Cloud:
    """``cloud`` (back-projected through ``from_fov_deg``) as :func:`point_cloud` gives it through ``fov_deg``.

    The field of view changes the focal length alone, x and y being (u - cu) / f * z with
    f = (W / 2) / tan(fov / 2): they scale by tan(fov / 2) / tan(from / 2); z and the points kept
    do not change. The app re-renders a cloud this way without the depth map.
    """
    check_fov(fov_deg)
    scale = math.tan(math.radians(fov_deg) / 2) / math.tan(math.radians(check_fov(from_fov_deg)) / 2)
    return Cloud(cloud.points * np.float32([scale, scale, 1]), cloud.colors, cloud.is_object)


def object_points(cloud: Cloud) -> Cloud:
    """The object's points of ``cloud`` alone (``point_cloud(..., object_only=True)``)."""
    keep = cloud.is_object
    return Cloud(cloud.points[keep], cloud.colors[keep], keep[keep])


def grid_shape(height: int, width: int, max_points: int) -> tuple[int, int]:
    """(rows, columns) of the largest grid of equal cells, the photo's aspect kept, with <= ``max_points``."""
    step = max(1.0, math.sqrt(height * width / max_points))  # cell side in pixels
    rows = max(1, math.floor(height / step))
    return rows, max(1, min(math.floor(width / step), max_points // rows))


def _centres(n: int, cells: int) -> np.ndarray:
    """Pixel index of each cell's centre when ``n`` pixels are cut into ``cells`` equal cells."""
    return np.floor((np.arange(cells) + 0.5) * (n / cells)).astype(np.int64)


def depth_jumps(z: np.ndarray, valid: np.ndarray, radius: int, ratio: float) -> np.ndarray:
    """(h, w) bool: the pixels whose (2 radius + 1)^2 window spans distances farther apart than ``ratio``.

    ``z`` (h, w) in metres; pixels not ``valid`` (sky) count as MAX_DISTANCE for the farthest and are
    ignored for the nearest, so what borders the sky is dropped unless it is nearly as far.
    """
    farthest = _window(np.where(valid, z, MAX_DISTANCE), radius, np.max)
    nearest = _window(np.where(valid, z, np.inf), radius, np.min)
    return farthest > ratio * nearest


def _window(a: np.ndarray, radius: int, reduce) -> np.ndarray:
    """``reduce`` (np.max / np.min) over each (2 radius + 1)^2 window of (h, w) ``a``, edges replicated."""
    out = np.pad(a, radius, mode="edge")
    for axis in (0, 1):  # separable: rows, then columns
        out = reduce(sliding_window_view(out, 2 * radius + 1, axis=axis), axis=-1)
    return out


def _inputs(
    source: Prediction | np.ndarray, mask: np.ndarray | None, image: ImageSource | None
) -> tuple[np.ndarray, np.ndarray | None, Image.Image | None, float]:
    """(depth (H, W) float32, mask (H, W) or None, composite RGB or None, photo / working size)."""
    scale = 1.0
    if isinstance(source, Prediction):
        if mask is not None or image is not None:
            raise InputError("point_cloud takes a Prediction alone, or a depth map with its mask and image")
        if source.working_size is not None:
            scale = max(source.image.size) / max(source.working_size)
        source, mask, image = source.depth, source.mask, source.image
    depth = np.asarray(source, dtype=np.float32)
    if depth.ndim != 2:
        raise InputError(f"the depth map must be (H, W), got shape {depth.shape}: pass Prediction.depth")
    finite = depth[np.isfinite(depth)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise InputError(
            f"the depth map must be in [0, 1] (near = 1, far = 0), got {finite.min():.3g}..{finite.max():.3g}: "
            "pass Prediction.depth, or the sigmoid of the network's depth logits"
        )
    if mask is not None:
        mask = np.asarray(mask, dtype=np.float32)
        if mask.shape != depth.shape:
            raise InputError(
                f"the mask is {mask.shape} but the depth map {depth.shape}: give both at one size"
            )
    rgb = None if image is None else open_image(image, name="composite image (fg_bg)")
    if rgb is not None and rgb.size != (depth.shape[1], depth.shape[0]):
        raise InputError(
            f"the image is {rgb.size[0]}x{rgb.size[1]} but the depth map {depth.shape[1]}x{depth.shape[0]}: "
            "give the composite the depth was predicted for, at the depth map's size"
        )
    return depth, mask, rgb, scale


def write_ply(
    cloud: Cloud, path: str | os.PathLike, *, tint_object: bool = True, z_forward: bool = False
) -> Path:
    """Write ``cloud`` as a binary little-endian PLY, atomically; returns the path.

    Each vertex has float x, y, z, uchar red, green, blue, alpha (255) and uchar ``object`` (1 for the
    object's points); an empty face element follows (trimesh writes one). Without ``z_forward`` z is
    stored negated: x right, y up, z towards the viewer, the right-handed frame of Babylon.js (gr.Model3D,
    whose default camera then sees the photo's view), three.js, glTF and MeshLab; ``z_forward=True``
    keeps the Cloud's z along the view, which right-handed viewers show mirrored (from the front) or
    inside out (from behind, the object behind the wall). ``tint_object`` blends the object's colours
    halfway (TINT_ALPHA) to OBJECT_TINT, so the viewer shows which points are the object.
    """
    import trimesh  # MIT-licensed PLY writer, needed only here (plyfile, the other choice, is GPL-3)

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name for the point cloud, like cloud.ply")
    colors = cloud.colors.astype(np.float32)
    if tint_object:
        colors[cloud.is_object] += TINT_ALPHA * (np.array(OBJECT_TINT, np.float32) - colors[cloud.is_object])
    points = cloud.points if z_forward else cloud.points * np.float32([1, 1, -1])
    # A mesh without faces: trimesh's point clouds cannot carry a custom vertex property.
    mesh = trimesh.Trimesh(
        vertices=points,
        faces=np.empty((0, 3), np.int64),
        vertex_colors=np.clip(np.round(colors), 0, 255).astype(np.uint8),
        process=False,  # keep every point, in order
        validate=False,
    )
    mesh.vertex_attributes["object"] = cloud.is_object.astype(np.uint8)
    data = trimesh.exchange.ply.export_ply(mesh, encoding="binary", include_attributes=True)
    try:
        return atomic_write(path, lambda tmp: tmp.write_bytes(data))
    except OSError as e:  # no permission, a file where a folder should be, disk full: nothing is left behind
        raise InputError(
            f"cannot write {path} ({e.strerror or e}): choose another folder (or free some disk space)"
        ) from e


PLY_TYPES = {"char": "i1", "uchar": "u1", "short": "<i2", "ushort": "<u2", "int": "<i4", "uint": "<u4",
             "float": "<f4", "double": "<f8"}  # fmt: skip
PLY_FIELDS = {"x", "y", "z", "red", "green", "blue", "object"}  # what read_ply needs of a vertex


def read_ply(path: str | os.PathLike, *, z_forward: bool = False) -> Cloud:
    """The :class:`Cloud` that :func:`write_ply` wrote at ``path`` (give the same ``z_forward``).

    Colours come back as stored: tinted if the file was written with ``tint_object``. Reads binary
    little-endian PLY files whose vertices have (at least) x, y, z, red, green, blue and ``object``.
    """
    path = Path(path)
    data = path.read_bytes()
    end = data.find(b"end_header\n")
    lines = data[:end].decode("ascii", errors="replace").splitlines() if end > 0 else []
    vertex_type, count = _vertex_layout(lines)
    start = end + len(b"end_header\n")
    if vertex_type is None or start + count * vertex_type.itemsize > len(data):
        raise InputError(f"{path.name} is not a point cloud written by maskdepth (write_ply): predict again")
    vertex = np.frombuffer(data, vertex_type, count=count, offset=start)
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=-1).astype(np.float32)
    return Cloud(
        points=points if z_forward else points * np.float32([1, 1, -1]),
        colors=np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=-1).astype(np.uint8),
        is_object=vertex["object"] > 0,
    )


def _vertex_layout(header: list[str]) -> tuple[np.dtype | None, int]:
    """(the numpy dtype of one vertex, the number of vertices) from a PLY header's lines; None if unreadable."""
    fields, count, in_vertex = [], 0, False
    for words in (line.split() for line in header[1:]):
        if words[:1] == ["element"]:
            in_vertex = words[1:2] == ["vertex"]
            if in_vertex and len(words) == 3 and words[2].isdigit():
                count = int(words[2])
        elif in_vertex and len(words) == 3 and words[0] == "property" and words[1] in PLY_TYPES:
            fields.append((words[2], PLY_TYPES[words[1]]))
        elif in_vertex and words[:1] == ["property"]:
            return None, 0  # a list or unknown type among the vertex's properties
    readable = header[:1] == ["ply"] and "format binary_little_endian 1.0" in header
    if not readable or not PLY_FIELDS <= {name for name, _ in fields}:
        return None, 0
    return np.dtype(fields), count
