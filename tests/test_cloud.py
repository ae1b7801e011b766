"""maskdepth.predict.cloud: depth maps to point clouds and PLY files.

A synthetic scene whose geometry is known (a near square on a far plane under a band of sky, edges
smoothed as the network smooths them) checks the numbers; a real photo through a tiny W-Net and the
Predictor checks that a real Prediction goes through.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from plyfile import PlyData
from skimage import data
from support.models import tiny_model

from maskdepth.data.geometry import Z_REF
from maskdepth.errors import InputError
from maskdepth.predict.cloud import (
    DEFAULT_FOV_DEG,
    OBJECT_TINT,
    grid_shape,
    object_points,
    point_cloud,
    read_ply,
    with_fov,
    write_ply,
)
from maskdepth.predict.predictor import Predictor

H, W = 120, 160
SKY_ROWS = 15  # rows 0..14 show the sky (depth 0)
SQUARE = (slice(30, 60), slice(100, 140))  # upper right of the photo: x > 0 and y > 0
PLANE_DEPTH, SQUARE_DEPTH = 0.25, 0.5  # 4 m and 2 m
RAMP = 2  # the edges are box-blurred twice with this radius: ramps ~8 px wide, like a network's


def box_blur(a: np.ndarray, r: int) -> np.ndarray:
    out = np.pad(a, r, mode="edge")
    for axis in (0, 1):
        out = sliding_window_view(out, 2 * r + 1, axis=axis).mean(-1)
    return out


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    """depth (H, W) with smoothed edges, the sharp depth it came from, mask (H, W) and image (H, W, 3)."""
    sharp = np.full((H, W), PLANE_DEPTH, np.float32)
    sharp[:SKY_ROWS] = 0.0
    sharp[SQUARE] = SQUARE_DEPTH
    mask = np.zeros((H, W), np.float32)
    mask[SQUARE] = 1.0
    v, u = np.mgrid[0:H, 0:W]
    image = np.stack([u * 255 // (W - 1), v * 255 // (H - 1), np.full_like(u, 90)], -1).astype(np.uint8)
    depth = box_blur(box_blur(sharp, RAMP), RAMP).astype(np.float32)
    return {"depth": depth, "sharp": sharp, "mask": mask, "image": image}


def pixels_of(points: np.ndarray, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) each point was back-projected from: the pinhole camera inverted."""
    f = (w / 2) / math.tan(math.radians(DEFAULT_FOV_DEG) / 2)
    x, y, z = points.T.astype(np.float64)
    cols = np.round(x * f / z + (w - 1) / 2).astype(int)
    rows = np.round(-y * f / z + (h - 1) / 2).astype(int)
    return rows, cols


def in_between(cloud, near: float, far: float) -> int:
    """How many points are farther than ``near`` and nearer than ``far`` metres."""
    return int(((cloud.points[:, 2] > near) & (cloud.points[:, 2] < far)).sum())


def test_points_sit_where_the_depth_says(scene) -> None:
    cloud = point_cloud(scene["depth"], scene["mask"], scene["image"])
    assert (
        cloud.points.dtype == np.float32 and cloud.colors.dtype == np.uint8 and cloud.is_object.dtype == bool
    )
    assert len(cloud) == len(cloud.colors) == len(cloud.is_object) > 10_000
    rows, cols = pixels_of(cloud.points)
    assert rows.min() >= 0 and rows.max() < H and cols.min() >= 0 and cols.max() < W
    # z = Z_REF / depth at the very pixel, and the colour is that pixel's
    np.testing.assert_allclose(cloud.points[:, 2], Z_REF / scene["depth"][rows, cols], rtol=1e-5)
    np.testing.assert_array_equal(cloud.colors, scene["image"][rows, cols])


def test_x_points_right_and_y_up(scene) -> None:
    cloud = point_cloud(scene["depth"], scene["mask"], scene["image"])
    x, y, _ = cloud.points[cloud.is_object].T
    assert (x > 0).all() and (y > 0).all()  # the square is in the photo's upper right
    rows, cols = pixels_of(cloud.points)
    left, top = cols < W // 4, rows < H // 2
    assert (cloud.points[left, 0] < 0).all() and (cloud.points[~top, 1] < 0).all()


def test_sky_and_curtains_are_dropped(scene) -> None:
    kept = point_cloud(scene["depth"], scene["mask"], scene["image"])
    raw = point_cloud(scene["depth"], scene["mask"], scene["image"], jump_ratio=1e9)
    gap = Z_REF / SQUARE_DEPTH * 1.1, Z_REF / PLANE_DEPTH * 0.9  # 2.2 .. 3.6 m: between square and plane
    assert in_between(raw, *gap) > 100  # the smoothed edges hang in the air as curtains...
    assert in_between(kept, *gap) == 0  # ...unless dropped
    rows, _ = pixels_of(kept.points)
    assert rows.min() >= SKY_ROWS and kept.points[:, 2].max() < 4.01
    # what is left is the square and the plane, nearly all of them
    assert np.isin(np.round(kept.points[:, 2], 3), [2.0, 4.0]).mean() > 0.97
    assert len(kept) > 0.75 * (H - SKY_ROWS) * W


def test_the_object_is_marked(scene) -> None:
    cloud = point_cloud(scene["depth"], scene["mask"], scene["image"])
    rows, cols = pixels_of(cloud.points)
    np.testing.assert_array_equal(cloud.is_object, scene["mask"][rows, cols] >= 0.5)
    assert cloud.is_object.sum() > 0.5 * scene["mask"].sum()
    # the square at 2 m; the ends of its smoothed edge (within a few %) are kept
    np.testing.assert_allclose(cloud.points[cloud.is_object, 2], Z_REF / SQUARE_DEPTH, rtol=0.03)
    alone = point_cloud(scene["depth"], scene["mask"], scene["image"], object_only=True)
    assert alone.is_object.all() and len(alone) == cloud.is_object.sum()


def test_the_cap_is_honoured_on_a_regular_grid(scene) -> None:
    for cap in (1000, 5000, 7 * 11):
        rows, cols = grid_shape(H, W, cap)
        assert 0.8 * cap <= rows * cols <= cap
        assert abs(cols / rows - W / H) < 0.2
    a = point_cloud(scene["depth"], scene["mask"], scene["image"], max_points=1000)
    b = point_cloud(scene["depth"], scene["mask"], scene["image"], max_points=1000)
    assert 0 < len(a) <= 1000
    np.testing.assert_array_equal(a.points, b.points)  # deterministic
    rows, cols = pixels_of(a.points)
    assert len(np.unique(np.diff(np.unique(cols)))) <= 2  # cells of 4 or 5 pixels: a regular grid
    # each point's colour is its cell's mean: the blue channel is constant, red follows the column
    assert (a.colors[:, 2] == 90).all()
    assert np.abs(a.colors[:, 0].astype(int) - scene["image"][rows, cols, 0]).max() <= 2


def test_ply_round_trip(scene, tmp_path) -> None:
    cloud = point_cloud(scene["depth"], scene["mask"], scene["image"])
    path = write_ply(cloud, tmp_path / "cloud.ply")
    raw = path.read_bytes()
    assert raw.startswith(b"ply\nformat binary_little_endian 1.0\n")
    # gr.Model3D's PLY reader (Babylon.js) knows float and uchar, not char; it skips names it does not know
    header = raw[: raw.index(b"end_header\n")].decode("ascii").splitlines()
    assert {line.split()[1] for line in header if line.startswith("property ") and " list " not in line} == {
        "float",
        "uchar",
    }
    vertex = PlyData.read(str(path))["vertex"]
    names = [p.name for p in vertex.properties]
    assert names == ["x", "y", "z", "red", "green", "blue", "alpha", "object"]
    v = vertex.data
    assert v["x"].dtype == np.float32 and v["red"].dtype == np.uint8 and v["object"].dtype == np.uint8
    xyz = np.stack([v["x"], v["y"], v["z"]], -1)
    assert len(v) >= 10_000 and np.isfinite(xyz).all()
    assert np.ptp(v["z"]) > 1.5  # the square at 2 m, the plane at 4 m
    np.testing.assert_array_equal(xyz, cloud.points * np.float32([1, 1, -1]))  # z towards the viewer
    np.testing.assert_array_equal(v["object"], cloud.is_object)
    rgb = np.stack([v["red"], v["green"], v["blue"]], -1)
    np.testing.assert_array_equal(rgb[~cloud.is_object], cloud.colors[~cloud.is_object])
    before = cloud.colors[cloud.is_object].astype(int)
    moved, wanted = rgb[cloud.is_object] - before, np.array(OBJECT_TINT) - before
    assert (moved != 0).any() and (np.sign(moved) * np.sign(wanted) >= 0).all()  # towards OBJECT_TINT

    plain = PlyData.read(str(write_ply(cloud, tmp_path / "plain.ply", tint_object=False, z_forward=True)))
    np.testing.assert_array_equal(plain["vertex"].data["z"], cloud.points[:, 2])
    np.testing.assert_array_equal(plain["vertex"].data["red"], cloud.colors[:, 0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cloud.ply", "plain.ply"]  # no temp files


def test_another_field_of_view_or_the_object_alone_without_the_depth_map(scene, tmp_path) -> None:
    """with_fov and object_points on a cloud read back from its PLY give what point_cloud gives directly."""
    cloud = point_cloud(scene["depth"], scene["mask"], scene["image"])
    back = read_ply(write_ply(cloud, tmp_path / "cloud.ply", tint_object=False))
    np.testing.assert_array_equal(back.points, cloud.points)
    np.testing.assert_array_equal(back.colors, cloud.colors)
    np.testing.assert_array_equal(back.is_object, cloud.is_object)
    for fov in (30.0, DEFAULT_FOV_DEG, 100.0):
        direct = point_cloud(scene["depth"], scene["mask"], scene["image"], fov_deg=fov)
        np.testing.assert_allclose(with_fov(back, fov).points, direct.points, rtol=1e-5, atol=1e-6)
    only = point_cloud(scene["depth"], scene["mask"], scene["image"], object_only=True)
    np.testing.assert_array_equal(object_points(back).points, only.points)
    assert object_points(back).is_object.all() and len(only) > 0
    with pytest.raises(InputError, match="field of view"):
        with_fov(back, 180.0)
    (tmp_path / "notes.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nend_header\n0 0 0\n")
    with pytest.raises(InputError, match="not a point cloud written by maskdepth"):
        read_ply(tmp_path / "notes.ply")
    (tmp_path / "cut.ply").write_bytes((tmp_path / "cloud.ply").read_bytes()[:-100])  # cut short
    with pytest.raises(InputError, match="not a point cloud written by maskdepth"):
        read_ply(tmp_path / "cut.ply")


def test_bad_inputs_name_the_fix(scene, tmp_path) -> None:
    with pytest.raises(InputError, match="sigmoid"):
        point_cloud(scene["depth"] * 4 - 1)  # logits, not a depth map
    with pytest.raises(InputError, match=r"\(H, W\)"):
        point_cloud(scene["depth"][None])
    with pytest.raises(InputError, match="at the depth map's size"):
        point_cloud(scene["depth"], scene["mask"], scene["image"][:, :-1])
    cloud = point_cloud(scene["depth"], max_points=500)
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("x")
    with pytest.raises(InputError, match="choose another folder"):
        write_ply(cloud, in_the_way / "cloud.ply")
    with pytest.raises(InputError, match="is a folder"):
        write_ply(cloud, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]  # nothing half-written


def test_a_real_prediction() -> None:
    photo = data.coffee()  # 400 x 600
    fg_bg = photo.copy()
    fg_bg[150:260, 380:500] = data.chelsea()[100:210, 200:320]  # paste a piece of another photo
    predictor = Predictor(tiny_model(), resolution=128)
    pred = predictor.predict(Image.fromarray(fg_bg), Image.fromarray(photo))
    assert pred.depth.shape == (400, 600)
    cloud = point_cloud(pred, max_points=20_000)
    assert 0 < len(cloud) <= 20_000 and np.isfinite(cloud.points).all()
    x, y, z = cloud.points.T
    assert (z >= Z_REF).all()  # depth <= 1 is never nearer than Z_REF
    assert x.min() < 0 < x.max() and y.min() < 0 < y.max()
    # seen from the camera the cloud keeps the photo's shape: 3:2 landscape
    assert 1.3 < np.ptp(x / z) / np.ptp(y / z) < 1.7
    rows, cols = pixels_of(cloud.points, 400, 600)
    np.testing.assert_array_equal(cloud.is_object, pred.mask[rows, cols] >= 0.5)
    assert len(np.unique(cloud.colors, axis=0)) > 1000  # the photo's colours, not one flat colour
