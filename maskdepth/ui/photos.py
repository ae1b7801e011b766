"""The Train tab's "your photos" dataset: a zip of backgrounds and a zip of cut-outs, made the seed's way.

The zips are extracted safely (:func:`maskdepth.data.zipsafe.safe_extract`) and made into a dataset by
:func:`maskdepth.data.make_dataset.make_dataset` in a folder named by their contents and the choices,
so the preview and the training that follows share one made set (the second call finds it made).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from maskdepth.data.make_dataset import MakeSettings, make_dataset
from maskdepth.data.zipsafe import safe_extract
from maskdepth.errors import InputError
from maskdepth.predict.teachers import SHIPPED, open_teacher
from maskdepth.ui.context import AppContext
from maskdepth.ui.errors import gradio_errors

KIND = "your photos"
TEACHER = "depth-anything/Depth-Anything-V2-Small-hf"
DEPTH_CHOICES = (SHIPPED, TEACHER)
PHOTO_SIZE = 224  # the seed's image size on disk; training resizes to its own --size
PREVIEW_SAMPLES = 6
DEFAULT_POSITIONS = 2
COST_TEXT = (
    "Every cut-out is pasted on every background at each place and again mirrored: backgrounds x "
    "cut-outs x places x 2 samples, each with its depth from the chosen source, made before the training "
    "starts (a second time it is found made). The shipped model's depth is the Predict tab's (whole-scene "
    "views at several sizes, mirrored): on a 2-core CPU 2 to 6 seconds a sample, so 5 backgrounds x 5 "
    "cut-outs x 2 places (100 samples) take 3 to 10 minutes; a GPU makes it seconds. Depth Anything V2 "
    "Small (Apache-2.0) needs `pip install transformers` and downloads about 100 MB once."
)


def _key(*parts: object) -> str:
    """A short digest of the uploads' bytes and the choices: one made set per distinct request."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:16]


def _image_folder(root: Path) -> Path:
    """The folder of images inside an extracted zip (zips often wrap their files in one folder)."""
    entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return _image_folder(entries[0])
    return root


def make_from_uploads(
    ctx: AppContext,
    backgrounds_zip: str | None,
    objects_zip: str | None,
    depth: str = SHIPPED,
    positions: int = DEFAULT_POSITIONS,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Extract both zips and make (or find made) the dataset; returns its folder."""
    if not backgrounds_zip or not objects_zip:
        raise InputError(
            "upload two zips: one of background photos and one of cut-outs (PNGs with transparency)"
        )
    if depth not in DEPTH_CHOICES:
        raise InputError(f"depth source must be one of {', '.join(DEPTH_CHOICES)}, got {depth!r}")
    bg_zip, obj_zip = Path(backgrounds_zip), Path(objects_zip)
    key = _key(bg_zip, obj_zip, depth, int(positions))
    root = ctx.data_dir / "uploads" / f"photos-{key}"
    folders = {}
    for name, archive in (("backgrounds", bg_zip), ("objects", obj_zip)):
        dest = root / name
        if not dest.is_dir():
            safe_extract(archive, dest, max_files=ctx.upload_max_files, max_total_bytes=ctx.upload_max_bytes)
        folders[name] = _image_folder(dest)
    settings = MakeSettings(
        backgrounds=str(folders["backgrounds"]),
        objects=str(folders["objects"]),
        out=str(root / "dataset"),
        positions=int(positions),
        depth=depth,
        size=PHOTO_SIZE,
    )
    return make_dataset(settings, open_teacher, on_progress=on_progress).out


def preview(dataset: Path, n: int = PREVIEW_SAMPLES) -> list[tuple[np.ndarray, str]]:
    """The first ``n`` samples spread over the set as gallery tiles: composite | mask | depth side by side."""
    stems = sorted(p.name for p in (dataset / "fg_bg").iterdir())
    picks = [stems[round(i * (len(stems) - 1) / max(1, n - 1))] for i in range(min(n, len(stems)))]
    tiles = []
    for stem in dict.fromkeys(picks):
        fg = np.asarray(Image.open(dataset / "fg_bg" / stem).convert("RGB"))
        mask = np.asarray(Image.open(dataset / "mask" / stem).convert("RGB"))
        depth = np.asarray(Image.open(dataset / "depth" / stem), dtype=np.float32) / 65535.0
        depth_rgb = np.repeat((np.clip(depth, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)
        tiles.append((np.hstack([fg, mask, depth_rgb]), f"sample {stem}: composite | mask | depth"))
    return tiles


def preview_photos(
    ctx: AppContext, backgrounds_zip: str | None, objects_zip: str | None, depth: str, positions: float
) -> tuple[list[tuple[np.ndarray, str]], str]:
    """The "Make the samples" button: make the set (training then reuses it) and show a few of its samples."""
    dataset = make_from_uploads(ctx, backgrounds_zip, objects_zip, depth, int(positions))
    n = len(list((dataset / "fg_bg").iterdir()))
    return preview(dataset), f"{n:,} samples made with depth from {depth}; Start training trains on them."


def build(ctx: AppContext) -> tuple[dict[str, gr.components.Component], gr.Group]:
    """The "your photos" controls (by the train handler's parameter names) in a hidden group."""
    with gr.Group(visible=False) as box:
        with gr.Row():
            backgrounds = gr.File(
                file_types=[".zip"], label="Backgrounds (zip of photos)", elem_id="md-photo-backgrounds"
            )
            objects = gr.File(
                file_types=[".zip"],
                label="Cut-outs (zip of PNGs with transparency)",
                elem_id="md-photo-objects",
            )
        # Depth Anything is offered where transformers is installed (locally: pip install transformers).
        choices = [c for c in DEPTH_CHOICES if c == SHIPPED or importlib.util.find_spec("transformers")]
        depth = gr.Radio(choices, value=SHIPPED, label="Depth from")
        positions = gr.Slider(
            1, 20, value=DEFAULT_POSITIONS, step=1, label="Places per cut-out and background"
        )
        gr.Markdown(COST_TEXT)
        make = gr.Button("Make the samples", elem_id="md-photo-make")
        status = gr.Markdown(elem_id="md-photo-status")
        gallery = gr.Gallery(
            label="Made samples: composite | mask | depth",
            columns=2,
            height="auto",
            elem_id="md-photo-gallery",
        )

    @gradio_errors
    def on_make(bg_zip: str | None, obj_zip: str | None, source: str, places: float):
        return preview_photos(ctx, bg_zip, obj_zip, source, places)

    make.click(on_make, [backgrounds, objects, depth, positions], [gallery, status], api_visibility="private")
    controls = {
        "photo_backgrounds": backgrounds,
        "photo_objects": objects,
        "photo_depth": depth,
        "photo_positions": positions,
    }
    return controls, box
