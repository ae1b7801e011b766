"""Predict tab: a background + composite in, the mask and the depth map out (single or batch).

Handlers are module-level functions of the app context so tests call them directly.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np

from maskdepth.errors import InputError, MaskDepthError
from maskdepth.naming import pair_by_name
from maskdepth.predict.outputs import OUTPUT_FILES, colorize_depth, save_prediction
from maskdepth.predict.predictor import DEFAULT_RESOLUTION, RESOLUTIONS, Prediction, Predictor
from maskdepth.ui import align_view, cloud_view
from maskdepth.ui.context import DEFAULT_CHOICE, AppContext, register_picker
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.examples import cached_examples
from maskdepth.ui.predictors import PREDICT_CONCURRENCY, gpu
from maskdepth.ui.result_files import DOWNLOADS, result_files
from maskdepth.ui.uploads import image_upload

MAX_BATCH_FILES = 100  # per request; the zip of a larger batch is better made with the CLI
# GPU time a request may hold on ZeroGPU (upper bounds, not measurements): one pair, including loading a
# model that is not cached yet; a batch adds decoding, the forward pass and four PNGs per composite.
GPU_S_PREDICT = 30
GPU_S_PER_IMAGE = 2
GPU_S_MAX = 240
PREDICT_API = (
    "Mask and depth of one pair. background: the photo without the object (optional for 3-channel models); "
    "composite: the same photo with the object pasted in; model: 'default (shipped)', a run name or a Hub "
    "repo id; resolution: fast, balanced or detailed (the long side the model runs at: "
    + ", ".join(f"{k} {v} px" for k, v in RESOLUTIONS.items())
    + "), or a number of pixels. Returns the mask overlay, the depth colour map, the (composite, depth) "
    "slider pair, and mask.png, depth.png, depth16.png, all at the composite's size, a note saying at "
    "what resolution the model ran, and scene.ply: the depth as a coloured point cloud in metres (binary PLY, "
    "the object's points tinted and marked by the vertex property 'object', z towards the viewer)."
)
PREDICT_BATCH_API = (
    f"Mask and depth of up to {MAX_BATCH_FILES} composites. backgrounds: none (3-channel models), one for "
    "all, or one per composite with the same file name; resolution as for /predict. Returns a zip (one folder per composite: mask.png, "
    "depth.png, depth16.png, depth_color.png) and a summary naming any file that could not be read."
)


@dataclass
class PredictTab:
    """The components other tabs and tests need."""

    model: gr.Dropdown
    background: gr.Image
    composite: gr.Image
    outputs: list[Any]


# ---- handlers -------------------------------------------------------------------------------------


def get_predictor(ctx: AppContext, model: str | None) -> Predictor:
    """The (cached) Predictor for the picker's value; a Space never lends its own token for a user's repo."""
    source = ctx.resolve_source(model)
    return ctx.predictors.get(source, token=False if ctx.on_space else None)


def _show_notes(pred: Prediction, name: str = "") -> None:
    for note in pred.notes:
        gr.Warning(f"{name}: {note}" if name else note)


def predict(
    background: str | None,
    composite: str | None,
    model: str | None = DEFAULT_CHOICE,
    resolution: str | int | None = DEFAULT_RESOLUTION,
    align: bool = True,
    *,
    ctx: AppContext,
) -> tuple[Any, ...]:
    """One pair -> (overlay, depth colour, slider pair, mask.png, depth.png, depth16.png, resolution note,
    scene.ply, alignment line, aligned pair).

    Every image output has the composite's size; scene.ply (the point cloud, written after the images)
    feeds the 3D view (:mod:`maskdepth.ui.cloud_view`). ``align``: register the background onto the
    composite first (the aligned pair, background | composite, is what the model compared).
    """
    if not composite:
        raise InputError("upload the composite image (fg_bg): the photo with the object pasted in")
    predictor = get_predictor(ctx, model)
    pred = predictor.predict(composite, background or None, resolution=resolution, align=bool(align))
    _show_notes(pred)
    return result_files(pred, ctx.outputs.new("predict"), bool(align))


def predict_batch(
    composites: Sequence[str] | None,
    backgrounds: Sequence[str] | None,
    model: str | None = DEFAULT_CHOICE,
    resolution: str | int | None = DEFAULT_RESOLUTION,
    *,
    ctx: AppContext,
    progress: gr.Progress | None = None,
) -> tuple[str, str]:
    """Many composites -> a zip with one folder per composite (the four files of ``OUTPUT_FILES``).

    Backgrounds: none (3-channel models), one for every composite, or one per composite with the
    same file name (``room1.jpg`` for ``room1.png`` is fine: names are matched without suffix).
    """
    composites = [str(p) for p in composites or []]
    backgrounds = [str(p) for p in backgrounds or []]
    if not composites:
        raise InputError("upload one or more composite images (fg_bg) for the batch")
    if len(composites) > MAX_BATCH_FILES:
        raise InputError(
            f"{len(composites)} composites is more than {MAX_BATCH_FILES} per batch here: split them, or use "
            "`python -m maskdepth predict --image FOLDER --bg FOLDER --out OUT` for a whole folder"
        )
    if len(backgrounds) > 1:
        fix = "give one background for all composites, or one per composite with the same file name"
        pairs = pair_by_name(composites, backgrounds, fix=fix + " (suffix may differ)")
    else:
        pairs = [(c, backgrounds[0] if backgrounds else None) for c in composites]
    predictor = get_predictor(ctx, model)
    if predictor.needs_background and not backgrounds:
        raise InputError(
            "this model needs backgrounds too: upload one for all composites, or one per composite "
            "with the same file name (or pick a 3-channel model)"
        )
    out = ctx.outputs.new("batch")
    results, skipped, used = [], [], set()
    for i, (comp, bg) in enumerate(pairs):
        if progress is not None:
            progress((i, len(composites)), desc="predicting", unit="images")
        name = Path(comp).stem
        folder = name if name not in used else f"{name}-{i + 1}"
        used.add(folder)
        try:
            pred = predictor.predict(comp, bg, resolution=resolution)
        except MaskDepthError as err:
            skipped.append(f"{Path(comp).name}: {err}")
            continue
        _show_notes(pred, Path(comp).name)
        save_prediction(pred, out / "results" / folder)
        results.append(folder)
    if not results:
        raise InputError("no composite could be read: " + "; ".join(skipped[:3]))
    zip_path = out / "maskdepth-batch.zip"
    readme = "One folder per composite, each holding:\n" + "".join(
        f"  {k}: {v}\n" for k, v in OUTPUT_FILES.items()
    )
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", readme)
        for folder in results:
            for name in OUTPUT_FILES:
                zf.write(out / "results" / folder / name, f"{folder}/{name}")
    summary = f"Predicted {len(results)} of {len(composites)} composites."
    if skipped:
        summary += "\n\nSkipped:\n" + "\n".join(f"- {s}" for s in skipped)
        gr.Warning(f"{len(skipped)} file(s) could not be read; see the summary under the zip")
    return str(zip_path), summary


def model_info(model: str | None, *, ctx: AppContext) -> tuple[str, Any]:
    """Describe the picked model and relabel the background input (optional for 3-channel models).

    Shown inline rather than as a pop-up: picking a model is not an action that should fail loudly.
    """
    try:
        predictor = get_predictor(ctx, model)
    except MaskDepthError as err:
        return f"⚠️ {err}", gr.update(label="Background (bg)")
    m = predictor.model
    if predictor.needs_background:
        text = f"6-channel W-Net (background + composite), trained at {m.cfg.describe_sizes()}."
        label = "Background (bg)"
    else:
        text = f"3-channel W-Net (composite only), trained at {m.cfg.describe_sizes()}: the background is not used."
        label = "Background (bg): optional, not used by this model"
    return text, gr.update(label=label)


# ---- layout ------------------------------------------------------------------------------------------


def depth_legend_html() -> str:
    """A turbo gradient bar from far (left) to near (right), using the same colour map as the outputs."""
    stops = colorize_depth(np.linspace(0, 1, 11, dtype=np.float32)[None, :])[0]
    gradient = ", ".join(f"rgb({r},{g},{b}) {i * 10}%" for i, (r, g, b) in enumerate(stops))
    return (
        '<div style="max-width:520px;margin:4px 0 8px 0;font-size:0.9em">'
        f'<div style="height:14px;border-radius:4px;background:linear-gradient(to right, {gradient})"></div>'
        '<div style="display:flex;justify-content:space-between">'
        "<span>far (0, blue)</span><span>depth colour map</span><span>near (1, red)</span></div>"
        "<div style='opacity:0.8'>Depth is inverse distance (near = 1, far = 0), relative to the scene; "
        "depth16.png stores it x 65535. On real photos the shipped model's depth is a rough layout guess "
        "(on the two real scenes measured, below a plain 'lower is nearer' gradient; README, real photos): "
        "its mask is the part to trust.</div></div>"
    )


class Handlers(NamedTuple):
    """The tab's prediction handlers, as Gradio calls them (errors -> ``gr.Error``; on ZeroGPU, on a GPU)."""

    predict: Callable[..., tuple[Any, ...]]
    predict_batch: Callable[..., tuple[str, str]]


def batch_gpu_seconds(composites: Sequence[str] | None, *_: Any, **__: Any) -> int:
    """The GPU time a batch may hold: ``GPU_S_PER_IMAGE`` per composite on top of one prediction's, capped."""
    return min(GPU_S_MAX, GPU_S_PREDICT + GPU_S_PER_IMAGE * len(composites or []))


def handlers(ctx: AppContext) -> Handlers:
    """The Predict and Predict-batch handlers of ``ctx``. Their arguments are what the API shows (and what
    ZeroGPU pickles to its GPU worker: file paths and the model's name, never the context); their names
    are the MCP tools' names (see :mod:`maskdepth.ui.mcp`)."""

    @gpu(duration=GPU_S_PREDICT)
    @gradio_errors
    def predict_mask_and_depth(
        background: str | None,
        composite: str | None,
        model: str | None,
        resolution: str = DEFAULT_RESOLUTION,
        align: bool = True,
    ) -> tuple[Any, ...]:
        return predict(background, composite, model, resolution, align, ctx=ctx)

    @gpu(duration=batch_gpu_seconds)
    @gradio_errors
    def predict_mask_and_depth_batch(
        composites: list[str] | None,
        backgrounds: list[str] | None,
        model: str | None,
        resolution: str = DEFAULT_RESOLUTION,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's idiom: it injects the tracker
    ) -> tuple[str, str]:
        return predict_batch(composites, backgrounds, model, resolution, ctx=ctx, progress=progress)

    return Handlers(predict=predict_mask_and_depth, predict_batch=predict_mask_and_depth_batch)


def _output_views() -> list[Any]:
    """Overlay, depth colours, the before/after slider and the three downloads (``predict``'s outputs)."""
    with gr.Row():
        overlay = gr.Image(
            label="Mask over the composite",
            format="jpeg",
            interactive=False,
            buttons=["download", "fullscreen"],
            elem_id="md-overlay",
        )
        depth = gr.Image(
            label="Depth (turbo colour map)",
            format="png",
            interactive=False,
            buttons=["download", "fullscreen"],
            elem_id="md-depth",
        )
    gr.HTML(depth_legend_html())
    slider = gr.ImageSlider(label="Before / after: composite | depth", format="png", interactive=False)
    with gr.Row():
        files = [gr.File(label=f"{name}: {OUTPUT_FILES[name]}", interactive=False) for name in DOWNLOADS]
    ran = gr.Markdown(elem_id="md-ran-at")
    return [overlay, depth, slider, *files, ran]


def _batch_box(model: Any, resolution: Any) -> tuple[Any, list[Any], list[Any]]:
    """The batch accordion: (its button, the handler's inputs, its outputs)."""
    with gr.Accordion("Batch: many composites at once → a zip", open=False):
        gr.Markdown(
            "Backgrounds: none (3-channel models), **one** for all composites, or **one per composite with "
            "the same file name**. The zip holds one folder per composite with "
            + ", ".join(f"`{k}` ({v})" for k, v in OUTPUT_FILES.items())
            + "."
        )
        with gr.Row():
            batch_fg = gr.File(file_count="multiple", file_types=["image"], label="Composites (fg_bg)")
            batch_bg = gr.File(file_count="multiple", file_types=["image"], label="Backgrounds (bg)")
        run = gr.Button("Predict batch", variant="primary")
        batch_zip = gr.File(label="Results (zip)", interactive=False)
        summary = gr.Markdown(label="Batch summary")
    return run, [batch_fg, batch_bg, model, resolution], [batch_zip, summary]


def build(ctx: AppContext) -> PredictTab:
    """Lay out the tab and wire its events (call inside a ``gr.Tab``)."""
    gr.Markdown(
        "Upload a **background** photo and the **same photo with an object pasted in** (the composite); the "
        "model finds the object (mask) and estimates how far everything is (depth). Outputs have the "
        "composite's size."
    )
    with gr.Row():
        model = gr.Dropdown(
            choices=ctx.model_choices(),
            value=DEFAULT_CHOICE,
            allow_custom_value=True,
            label="Model",
            info="the shipped model, a trained run, or type a Hub repo id (owner/name)",
            scale=5,
        )
        refresh = gr.Button("↻ Refresh list", scale=1, size="sm")
    register_picker(ctx, model)
    info = gr.Markdown()
    # Filled on every page load: says which model is picked, or why the default one is missing.
    ctx.on_page_load(lambda: model_info(DEFAULT_CHOICE, ctx=ctx)[0], info)
    with gr.Row():
        camera = {
            "sources": ["upload", "webcam", "clipboard"],
            "webcam_options": gr.WebcamOptions(mirror=False),
        }
        background = image_upload(
            label="1. Background (bg): the scene without the object", elem_id="md-bg", **camera
        )
        composite = image_upload(
            label="2. Composite (fg_bg): the same scene with the object", elem_id="md-fg", **camera
        )
    gr.Markdown(
        "Taking both with the camera: first the empty scene, then put the object in and take the second "
        "from the same spot, with the same light. A hand-held pair is aligned before the model sees it.",
        elem_id="md-capture-hint",
    )
    align = gr.Checkbox(
        value=True,
        label="Align the photos",
        info="register the background onto the composite (turn, shift, zoom, exposure); off: use them as given",
    )
    resolution = gr.Radio(
        [(f"{name} ({px} px)", name) for name, px in RESOLUTIONS.items()],
        value=DEFAULT_RESOLUTION,
        label="Working resolution: fast ... detailed",
        info="the long side the model runs at (the photo's aspect ratio is kept); outputs are always at the "
        "photo's own size. balanced is the measured best quality for its speed",
    )
    on = handlers(ctx)
    examples_at = gr.Column()  # the examples sit here, above the button; they need the outputs below
    run = gr.Button("Predict", variant="primary", elem_id="md-predict")
    outputs = _output_views()
    alignment = align_view.build()
    cloud = cloud_view.build()  # the 3D view; predict's scene.ply (the download) feeds it
    outputs += [cloud.download, *alignment]
    with examples_at:
        cached_examples(ctx, [background, composite, model, resolution], outputs, on.predict)
    batch_run, batch_inputs, batch_outputs = _batch_box(model, resolution)

    def on_model(model: str | None) -> tuple[str, Any]:
        return model_info(model, ctx=ctx)

    queue = {"concurrency_id": "predict", "concurrency_limit": PREDICT_CONCURRENCY}
    run.click(
        on.predict,
        [background, composite, model, resolution, align],
        outputs,
        api_name="predict",
        api_description=PREDICT_API,
        **queue,
    )
    batch_run.click(
        on.predict_batch,
        batch_inputs,
        batch_outputs,
        api_name="predict_batch",
        api_description=PREDICT_BATCH_API,
        **queue,
    )
    model.change(on_model, model, [info, background], api_visibility="private", **queue)
    cloud_view.wire(ctx, cloud)
    ctx.model_events.append(refresh.click(lambda: None, None, None, api_visibility="private", queue=False))
    return PredictTab(model=model, background=background, composite=composite, outputs=outputs)
