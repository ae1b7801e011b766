"""The Predict tab's 3D view (maskdepth.ui.cloud_view): handlers called directly, as tests/test_app.py does.

The model is conftest's tiny 'shipped' W-Net; the photos are a real example pair (600 x 400, more
pixels than the 200k-point cap).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData
from support.ui import DEFAULT_CHOICE, gr_message, gradio_errors, predict_tab

from maskdepth.errors import InputError
from maskdepth.predict.cloud import DEFAULT_FOV_DEG, MAX_POINTS
from maskdepth.predict.predictor import Prediction, Predictor
from maskdepth.ui import cloud_view

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def vertices(path: str) -> np.ndarray:
    return PlyData.read(path)["vertex"].data


@pytest.fixture
def scene(ctx) -> str:
    """The scene.ply of one prediction of the coffee example, through the Predict handler."""
    *_, ran, scene, _aligned, _view = predict_tab.predict(
        str(EXAMPLES / "coffee_coin_bg.jpg"), str(EXAMPLES / "coffee_coin_fg_bg.jpg"), DEFAULT_CHOICE, ctx=ctx
    )
    assert "ran at" in ran
    return scene


def test_predict_returns_the_point_cloud_the_3d_view_shows(ctx, scene: str) -> None:
    assert Path(scene).name == "scene.ply" and Path(scene).parent.parent == ctx.outputs.root
    v = vertices(scene)
    assert 10_000 <= len(v) <= MAX_POINTS < 600 * 400  # capped so the browser copes
    assert {"red", "green", "blue", "object"} <= set(v.dtype.names)
    # With the controls at their defaults the view is the download itself: nothing is written again.
    assert cloud_view.render(scene, DEFAULT_FOV_DEG, False, ctx=ctx) == scene
    assert cloud_view.render(None, DEFAULT_FOV_DEG, False, ctx=ctx) is None  # nothing predicted yet


@pytest.fixture
def marked_scene(ctx) -> str:
    """scene.ply of a Prediction whose object is known: a square near the camera on a sloping floor."""
    image = Image.open(EXAMPLES / "coffee_coin_fg_bg.jpg").convert("RGB")
    w, h = image.size
    depth = np.repeat(np.linspace(0.2, 0.6, h, dtype=np.float32)[:, None], w, axis=1)  # nearer downwards
    mask = np.zeros((h, w), np.float32)
    mask[150:250, 250:350] = 1.0
    depth[140:260, 240:360] = 0.8  # the object stands out from its surroundings
    pred = Prediction(mask=mask, depth=depth, image=image, working_size=(256, 171))
    return cloud_view.scene_ply(pred, ctx.outputs.new("test"))


def test_fov_and_object_only_rerender_without_the_model(ctx, marked_scene: str, monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("a re-render must not run the model")

    monkeypatch.setattr(Predictor, "predict", no_model)
    scene = marked_scene
    full = vertices(scene)
    assert 0 < full["object"].sum() < len(full)
    wide = cloud_view.render(scene, 90, False, ctx=ctx)
    assert Path(wide).name == "scene-90deg.ply" and wide != scene
    w = vertices(wide)
    stretch = np.tan(np.radians(45)) / np.tan(np.radians(DEFAULT_FOV_DEG / 2))
    np.testing.assert_allclose(w["x"], full["x"] * stretch, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(w["z"], full["z"])
    for name in ("red", "green", "blue", "object"):  # no second tint: the colours are scene.ply's
        np.testing.assert_array_equal(w[name], full[name])

    alone = vertices(cloud_view.render(scene, DEFAULT_FOV_DEG, True, ctx=ctx))
    assert len(alone) == full["object"].sum() and (alone["object"] == 1).all()
    np.testing.assert_array_equal(alone["x"], full["x"][full["object"] == 1])

    # The camera frames the whole scene at every field of view (the viewer would keep the last distance).
    (alpha, beta, near), (_, _, far) = cloud_view.camera(scene, DEFAULT_FOV_DEG), cloud_view.camera(scene, 90)
    assert (alpha, beta) == cloud_view.CAMERA_DEG and 0 < near < far


def test_a_missing_or_foreign_cloud_is_a_message(ctx, tmp_path: Path) -> None:
    message = gr_message(
        lambda: gradio_errors(cloud_view.render)(str(tmp_path / "gone.ply"), 70, False, ctx=ctx)
    )
    assert "click Predict again" in message
    (tmp_path / "mesh.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 0\nend_header\n")
    with pytest.raises(InputError, match="predict again"):
        cloud_view.render(str(tmp_path / "mesh.ply"), 70, False, ctx=ctx)


def test_small_photos_are_sampled_finer_for_the_browser() -> None:
    """The viewer's points are one pixel wide: a small photo's cloud gets about MAX_POINTS points."""
    rng = np.random.default_rng(0)
    small = Prediction(
        mask=rng.random((61, 83), dtype=np.float32),
        depth=rng.uniform(0.2, 0.8, (61, 83)).astype(np.float32),
        image=Image.fromarray(rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)),
        working_size=(83, 61),
    )
    fine = cloud_view.densified(small)
    w, h = fine.image.size
    assert MAX_POINTS / 2 < w * h <= MAX_POINTS and fine.depth.shape == fine.mask.shape == (h, w)
    assert abs(w / h - 83 / 61) < 0.01 and fine.working_size == (83, 61)
    assert 0.2 <= fine.depth.min() and fine.depth.max() <= 0.8  # bilinear: no new extremes
    photo = Image.open(EXAMPLES / "coffee_coin_fg_bg.jpg")  # 600 x 400: already more than enough pixels
    big = Prediction(
        mask=np.zeros((400, 600), np.float32), depth=np.ones((400, 600), np.float32), image=photo
    )
    assert cloud_view.densified(big) is big
