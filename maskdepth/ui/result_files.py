"""What one prediction shows in the app: the files of :func:`result_files`, written into a request's folder.

The downloads (mask.png, depth.png, depth16.png) and the colour map are the library's PNGs; the
overlay and the composite are views to look at, written as JPEG (``bench.predict_speed`` times it all).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from maskdepth.imageio import save_image
from maskdepth.predict.outputs import mask_overlay, save_prediction
from maskdepth.predict.predictor import Prediction, depth_source
from maskdepth.ui import align_view, cloud_view

VIEW_QUALITY = 90  # JPEG quality of the overlay and the slider's composite
DOWNLOADS = ("mask.png", "depth.png", "depth16.png")


def result_files(pred: Prediction, out: Path, align: bool) -> tuple[Any, ...]:
    """Write into ``out`` what the Predict tab shows of ``pred`` and return the handler's outputs after
    the prediction: overlay, depth colours, slider pair, the downloads, the resolution line, scene.ply,
    the alignment line and the aligned pair. The views are JPEG: a 12 MP PNG takes about 1 s to
    write and 20 MB to send."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="maskdepth-views") as pool:
        views = pool.submit(_views, pred, out)  # beside the PNGs: their encodes leave a core idle at the end
        files = save_prediction(pred, out)
        overlay_path, before = views.result()
    color = str(files["depth_color.png"])
    return (
        str(overlay_path),
        color,
        (str(before), color),
        *(str(files[name]) for name in DOWNLOADS),
        ran_at(pred),
        cloud_view.scene_ply(pred, out),
        align_view.line(pred, align),
        align_view.pair(pred, out),
    )


def _views(pred: Prediction, out: Path) -> tuple[Path, Path]:
    """overlay.jpg (the mask tinted over the composite) and composite.jpg (the slider's left side)."""
    overlay = Image.fromarray(mask_overlay(pred.image, pred.mask))
    overlay_path = save_image(overlay, out / "overlay.jpg", quality=VIEW_QUALITY)
    return overlay_path, save_image(pred.image.convert("RGB"), out / "composite.jpg", quality=VIEW_QUALITY)


def ran_at(pred: Prediction) -> str:
    """Where the model ran vs the size of the outputs, for the line beside the result."""
    (w, h), (ww, wh) = pred.image.size, pred.working_size
    how = "refined to full size by a guided filter" if (w, h) != (ww, wh) else "no resizing needed"
    source = depth_source(pred)
    view = f" ({source})" if source else ""
    return f"The model ran at **{ww}x{wh}**{view}; the outputs are at the photo's **{w}x{h}** ({how})."
