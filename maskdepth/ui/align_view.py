"""The Predict tab's alignment: the registration found, in one line, and the aligned pair as a slider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from maskdepth.predict.predictor import Prediction

ALIGNED_VIEW_SIDE = 1280  # long side of the aligned-pair view: a screen's worth, not the photo's 12 MP


def line(pred: Prediction, align: bool) -> str:
    """The registration found, in one line for beside the result."""
    if pred.alignment is not None:
        return f"**Alignment**: {pred.alignment.describe()}."
    if pred.background is None:
        return "**Alignment**: none (this model reads the composite alone)."
    return "**Alignment**: off (the background was used as given)." if not align else ""


def pair(pred: Prediction, out: Path) -> tuple[str, str] | None:
    """(aligned background, composite) as screen-sized images for the slider: what the model compared."""
    if pred.background is None:
        return None
    views = []
    for name, image in (("aligned_bg.jpg", pred.background), ("composite_view.jpg", pred.image)):
        scale = min(1.0, ALIGNED_VIEW_SIDE / max(image.size))
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image.resize(size, Image.BILINEAR, reducing_gap=3.0).save(out / name, quality=90)
        views.append(str(out / name))
    return views[0], views[1]


def build() -> list[Any]:
    """The alignment line and the aligned pair (``predict``'s last two outputs)."""
    line = gr.Markdown(elem_id="md-alignment")
    pair = gr.ImageSlider(
        label="What the model compared: aligned background | composite (drag to flick between them)",
        format="jpeg",
        interactive=False,
        elem_id="md-aligned",
    )
    return [line, pair]
