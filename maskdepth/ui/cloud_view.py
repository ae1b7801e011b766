"""The Predict tab's 3D view: the prediction's point cloud (the object tinted), re-rendered without the model.

A prediction writes ``scene.ply`` once, after its 2D outputs (:func:`scene_ply`: the whole scene through
the default field of view, at most ``MAX_POINTS`` points). That file is the download and the source of
every view: the field of view only rescales x and y (:func:`maskdepth.predict.cloud.with_fov`) and
"object only" only drops points, so :func:`render` reads the file back instead of keeping the depth
map. It is held by a component (the download) rather than a per-request folder or a ``gr.State``, so
the cached examples' clouds re-render too, long after the folders they were written to are pruned.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from PIL import Image

from maskdepth.errors import InputError
from maskdepth.predict.cloud import (
    DEFAULT_FOV_DEG,
    MAX_POINTS,
    SCENE_PLY,
    object_points,
    point_cloud,
    read_ply,
    with_fov,
    write_ply,
)
from maskdepth.predict.predictor import Prediction
from maskdepth.ui.context import AppContext
from maskdepth.ui.errors import gradio_errors

# Where the view's camera starts, in degrees: 15 right of and 10 above the photo's own viewpoint (90, 90), so
# the relief shows before anyone drags. Its distance is FRAMING x the radius of the scene's bounding sphere:
# Babylon.js' camera sees 0.8 rad top to bottom, so 2.6 fits the sphere in the view's height; at 2.0 a
# 200k-point cloud of a 600 x 400 photo shows gaps between its one-pixel points (tests/test_browser.py).
CAMERA_DEG = (75.0, 80.0)
FRAMING = 2.3
FOV_RANGE = (20, 120)  # the slider's degrees: a long lens .. an ultra-wide phone camera
CLOUD_CONCURRENCY = 2  # re-renders are a few tens of ms of numpy and a PLY write
CLOUD_HELP = (
    f"Each pixel placed at its distance (at most {MAX_POINTS // 1000}k points; the sky and the jumps at "
    "outlines left out), the object tinted. Drag to turn, scroll to zoom. The photo's field of view is "
    "unknown: if the scene looks stretched or squashed sideways, change it. The download is the whole "
    f"scene at {DEFAULT_FOV_DEG:g}°; the view's own download button saves what it shows."
)


class CloudViews(NamedTuple):
    """The 3D view, its controls and the PLY download (the last is one of predict's outputs)."""

    view: gr.Model3D
    fov: gr.Slider
    object_only: gr.Checkbox
    download: gr.File


def scene_ply(pred: Prediction, folder: Path) -> str:
    """Write ``pred``'s whole point cloud through :data:`DEFAULT_FOV_DEG` as ``folder/scene.ply``; its path.

    A photo of fewer than ``MAX_POINTS`` pixels is sampled more finely than one point per pixel (see
    :func:`densified`), so that the browser's one-pixel points still cover its surfaces.
    """
    return str(write_ply(point_cloud(densified(pred)), folder / SCENE_PLY))


def densified(pred: Prediction, max_points: int = MAX_POINTS) -> Prediction:
    """``pred`` resized up (bilinear) to nearly ``max_points`` pixels, or as it is when it has as many.

    gr.Model3D (Babylon.js) draws every point one pixel wide, and the cloud fills about half of the view's
    480 px height: a 224 px synthetic example's 50k points leave a dark gap between every row and column
    there, 200k points do not (screenshots of the app). The working size is kept, so the curtains at
    outlines stay as wide in the photo as :func:`~maskdepth.predict.cloud.point_cloud` makes them.
    """
    w, h = pred.image.size
    scale = math.sqrt(max_points / (w * h))
    if scale < 2**0.5:  # less than twice the points: not worth the bigger file
        return pred
    size = (math.floor(w * scale), math.floor(h * scale))

    def up(a: np.ndarray) -> np.ndarray:  # (h, w) float32 -> (size[1], size[0]) float32
        return np.asarray(Image.fromarray(a.astype(np.float32)).resize(size, Image.BILINEAR))

    image = pred.image.resize(size, Image.BILINEAR)
    return dataclasses.replace(pred, mask=up(pred.mask), depth=up(pred.depth), image=image)


def render(scene: str | None, fov_deg: float, object_only: bool, *, ctx: AppContext) -> str | None:
    """The 3D view of ``scene`` (a :func:`scene_ply` file) through ``fov_deg``, the object alone if asked.

    The model does not run again; None (an empty view) before any prediction.
    """
    if not scene:
        return None
    if not Path(scene).is_file():
        raise InputError("this prediction's point cloud is no longer on the server: click Predict again")
    fov_deg = float(fov_deg)
    if fov_deg == DEFAULT_FOV_DEG and not object_only:
        return scene
    cloud = with_fov(read_ply(scene), fov_deg)
    if object_only:
        cloud = object_points(cloud)
        if len(cloud) == 0:
            gr.Warning("the mask found no object: the object-only view is empty")
    name = f"scene-{fov_deg:g}deg{'-object' if object_only else ''}.ply"
    # The colours were tinted when scene.ply was written: tinting again would darken the object twice.
    return str(write_ply(cloud, ctx.outputs.new("cloud") / name, tint_object=False))


def camera(scene: str, fov_deg: float) -> tuple[float, float, float]:
    """The view's camera for ``scene`` through ``fov_deg``: (alpha, beta) :data:`CAMERA_DEG`, and a distance
    that frames the whole scene.

    The viewer keeps its distance from one cloud to the next, so a wider field of view would overflow it;
    the object-only view keeps the scene's distance (the object at the scale it has in the scene).
    """
    points = with_fov(read_ply(scene), fov_deg).points
    radius = float(np.linalg.norm(np.ptp(points, axis=0))) / 2 if len(points) else 1.0
    return (*CAMERA_DEG, round(FRAMING * radius, 3))


def build() -> CloudViews:
    """Lay out the 3D view (call inside the Predict tab); :func:`wire` connects it."""
    with gr.Row(equal_height=False):
        view = gr.Model3D(
            label="3D: the depth as a point cloud (object tinted)",
            display_mode="point_cloud",
            camera_position=(*CAMERA_DEG, None),  # the distance comes with each cloud (see camera)
            clear_color=(0.08, 0.08, 0.1, 1.0),
            interactive=False,
            height=480,
            elem_id="md-cloud",
            scale=3,
        )
        with gr.Column(scale=1, min_width=240):
            fov = gr.Slider(
                *FOV_RANGE,
                value=DEFAULT_FOV_DEG,
                step=1,
                label="Field of view (degrees)",
                info="the camera's horizontal angle of view (phones: about 65..75)",
                elem_id="md-cloud-fov",
            )
            object_only = gr.Checkbox(label="Object only", value=False, elem_id="md-cloud-object")
            download = gr.File(label=f"{SCENE_PLY}: the point cloud (PLY)", interactive=False)
            gr.Markdown(CLOUD_HELP)
    return CloudViews(view=view, fov=fov, object_only=object_only, download=download)


def wire(ctx: AppContext, views: CloudViews) -> None:
    """Re-render the view when a prediction (or an example) brings a new scene.ply or a control changes."""

    @gradio_errors
    def on_change(scene: str | None, fov_deg: float, object_only: bool) -> Any:
        view = render(scene, fov_deg, object_only, ctx=ctx)
        return gr.update(value=view, camera_position=camera(scene, fov_deg) if view else (*CAMERA_DEG, None))

    gr.on(
        [views.download.change, views.fov.change, views.object_only.change],
        on_change,
        [views.download, views.fov, views.object_only],
        views.view,
        api_visibility="private",
        show_progress="minimal",
        trigger_mode="always_last",  # dragging the slider: the latest value once the current render ends
        concurrency_id="cloud",
        concurrency_limit=CLOUD_CONCURRENCY,
    )
